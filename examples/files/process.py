"""Sum up numbers from --input (one per line) into --output as CSV."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()


def number(line: str) -> float | None:
    try:
        return float(line.split(",")[-1])
    except ValueError:  # a header line such as "id,value"
        return None


with open(args.input) as source:
    numbers = [n for n in map(number, source) if n is not None]
with open(args.output, "w") as out:
    out.write("count,total\n")
    out.write(f"{len(numbers)},{sum(numbers)}\n")
print(f"processed {len(numbers)} rows")
