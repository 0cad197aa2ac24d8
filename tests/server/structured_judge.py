"""Judges constrained outputs independently of Lumen's constraint library.

usage: structured_judge.py KIND SPEC_FILE OUTPUTS_FILE

OUTPUTS_FILE is a JSON list of strings. KIND and SPEC_FILE:
  json_schema  the JSON Schema; each output must parse as JSON and validate
               (Debian's python3-jsonschema, Draft 2020-12, formats checked)
  regex        the regular expression; re.fullmatch with ASCII classes
  sexpr        ignored; the s-expression grammar of structured_output_test.cc,
               recognized by the hand-written parser below

Prints "N of M valid" and one line per bad output; exits 1 if any is bad.
"""

import json
import re
import sys

import jsonschema

WORD_FIRST = set("abcdefghijklmnopqrstuvwxyz")
WORD_REST = WORD_FIRST | set("0123456789_-")
NOT_QUOTED = set("'\\\n()")


def sexpr_atom(s, i):
    """End of the atom starting at s[i], or -1."""
    if i < len(s) and s[i] in WORD_FIRST:
        j = i + 1
        while j < len(s) and j - i < 5 and s[j] in WORD_REST:
            j += 1
        return j
    if i < len(s) and s[i] == "'":
        j = i + 1
        while j < len(s) and s[j] not in NOT_QUOTED:
            j += 1
        return j + 1 if j < len(s) and s[j] == "'" and j - i - 1 <= 4 else -1
    j = i + 1 if i < len(s) and s[i] == "-" else i
    if j < len(s) and s[j] == "0":
        return j + 1
    if j < len(s) and s[j] in "123456789":
        k = j + 1
        while k < len(s) and k - j < 3 and s[k].isascii() and s[k].isdigit():
            k += 1
        return k
    return -1


def sexpr_list(s, i, element):
    """End of '(' element (' ' element){0,3} ')' at s[i], or -1."""
    if i >= len(s) or s[i] != "(":
        return -1
    i = element(s, i + 1)
    count = 1
    while i >= 0 and i < len(s) and s[i] == " " and count < 4:
        i = element(s, i + 1)
        count += 1
    if i < 0 or i >= len(s) or s[i] != ")":
        return -1
    return i + 1


def sexpr_item(s, i):
    if i < len(s) and s[i] == "(":
        return sexpr_list(s, i, sexpr_atom)
    return sexpr_atom(s, i)


def sexpr_accepts(s):
    return sexpr_list(s, 0, sexpr_item) == len(s)


def main():
    kind, spec_file, outputs_file = sys.argv[1:4]
    with open(outputs_file, encoding="utf-8") as f:
        outputs = json.load(f)
    with open(spec_file, encoding="utf-8") as f:
        spec = f.read()
    if kind == "json_schema":
        schema = json.loads(spec)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

        def problem(text):
            try:
                doc = json.loads(text)
            except ValueError as e:
                return f"not JSON ({e})"
            for err in validator.iter_errors(doc):
                return f"fails at {list(err.absolute_path)}: {err.message}"
            return None

    elif kind == "regex":
        pattern = re.compile(spec, re.ASCII)

        def problem(text):
            return None if pattern.fullmatch(text) else "does not full-match"

    elif kind == "sexpr":

        def problem(text):
            return None if sexpr_accepts(text) else "not an s-expression"

    else:
        print(f"unknown kind {kind}")
        return 2
    bad = 0
    for i, text in enumerate(outputs):
        p = problem(text)
        if p is not None:
            print(f"output {i} {p}: {text!r}")
            bad += 1
    print(f"{len(outputs) - bad} of {len(outputs)} valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
