"""Sum up numbers from --input (one per line) into --output as CSV."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()
with open(args.input) as source:
    numbers = [float(line.split(",")[-1]) for line in source if line.strip()]
with open(args.output, "w") as out:
    out.write("count,total\n")
    out.write(f"{len(numbers)},{sum(numbers)}\n")
print(f"processed {len(numbers)} rows")
