#!/usr/bin/env python3
"""bench/results_section.py RESULTS REPORT HEAD MARKER — puts a bench script's report in
its own section of RESULTS (bench/RESULTS.md).

The section starts at the line HEAD ("## …") and ends before the next "## " heading. It
is replaced by REPORT's text; whatever followed the line MARKER in the old section (the
notes a person wrote) is kept after it. Other sections are left alone. A missing file or
section is made. The file is replaced whole (written beside it, then renamed)."""
import os
import re
import sys

path, report_path, head, marker = sys.argv[1:5]
with open(report_path) as f:
    report = f.read().rstrip("\n") + "\n"
text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
start = text.find(head)
if start < 0:
    text = text.rstrip("\n") + "\n\n" + report + "\n" + marker + "\n"
else:
    nxt = re.search(r"^## ", text[start + len(head):], re.M)
    end = start + len(head) + nxt.start() if nxt else len(text)
    section = text[start:end]
    notes = section[section.find(marker):] if marker in section else marker + "\n"
    text = text[:start] + report + "\n" + notes.rstrip("\n") + "\n" + ("\n" + text[end:] if nxt else "")
tmp = path + ".section.tmp"
with open(tmp, "w") as f:
    f.write(text)
os.replace(tmp, path)
