"""Turn the processed CSV into report.txt."""

import sys

with open(sys.argv[1]) as source:
    rows = source.read().splitlines()
with open("report.txt", "w") as out:
    out.write("report\n" + "\n".join(rows) + "\n")
print("report written")
