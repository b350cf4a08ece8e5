"""Rewrite README.md's layer policy table from the registry (`tfmm.optimization.policies`).

Usage: python scripts/policy_table.py   (tests/test_architecture.py checks README matches)
"""

import os
import re

import tfmm  # noqa: F401  (first: selects Keras 2)
from tfmm._files import atomic_write_text
from tfmm.optimization.policy_table import policy_table_markdown

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BEGIN, END = "<!-- policy-table:begin -->", "<!-- policy-table:end -->"

if __name__ == "__main__":
    with open(README, encoding="utf-8") as f:
        text = f.read()
    block = f"{BEGIN}\n{policy_table_markdown()}\n{END}"
    text, count = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if not count:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block to rewrite.")
    atomic_write_text(README, text)
    print(f"rewrote the policy table in {README}")
