#!/usr/bin/env python3
"""Functions of one object that ran, from callgrind output files (names compressed or not).

    callgrind_symbols.py OBJECT_PATH FILE... > symbols

Prints each executed function's linker symbol once, for lld's --symbol-ordering-file: those of
the first file sorted by name, then those the second file adds, sorted, and so on. Give the
commonest workload first: its code then sits together and a node running only that touches
only its part. Sorting by name keeps a module's functions (and a regenerated file's diff) together.
Run callgrind with --demangle=no so the names are the symbols. Entries callgrind could not name
(addresses) and valgrind's own ("(below main)") are left out; lld ignores names it does not know.
"""
import os
import re
import sys

ENTRY = re.compile(r"^(c?ob|c?fn)=(?:\((\d+)\))?\s*(.*)$")


def executed(path, obj):
    objects, functions, found = {}, {}, set()
    current = None
    with open(path, errors="replace") as f:
        for line in f:
            m = ENTRY.match(line.rstrip("\n"))
            if not m:
                continue
            kind, idx, name = m.groups()
            table = objects if kind.endswith("ob") else functions
            if kind.endswith("ob") and name.startswith("/"):
                name = os.path.realpath(name)  # once per object: later lines say only "(N)"
            if idx is not None:
                if name:
                    table[idx] = name
                name = table.get(idx, name)
            if kind == "ob":
                current = name
            elif kind == "fn" and current == obj:
                # callgrind marks a function's recursion depth or a re-entered copy with '2 etc.
                name = re.sub(r"'\d+$", "", name)
                if not name.startswith("0x") and not name.startswith("("):
                    found.add(name)
    return found


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: callgrind_symbols.py OBJECT_PATH CALLGRIND_OUT...")
    # callgrind names the object by its resolved path.
    obj, seen = os.path.realpath(sys.argv[1]), set()
    for path in sys.argv[2:]:
        names = executed(path, obj)
        if not names:
            sys.exit(f"no function of {obj} in {path}")
        for n in sorted(names - seen):
            print(n)
        seen |= names


if __name__ == "__main__":
    main()
