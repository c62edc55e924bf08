"""Pretend to render one frame: writes a small text 'image'."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--frame", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
with open(args.out, "w") as out:
    out.write(f"frame {args.frame}\n" + "#" * (args.frame % 40) + "\n")
print(f"rendered frame {args.frame}")
