#!/usr/bin/env python3
"""Finds import circles between the modules of a Rust crate (one node per file).

A module "imports" another when it names it in a `use` or a path (`crate::a::b`,
`super::x`, `self::y`, or a child `mod`'s items). Prints every circle and exits 1 when
there is one. Usage: import-cycles.py proxy/src
"""
import re
import sys
from pathlib import Path

def module_of(root: Path, f: Path) -> tuple:
    rel = f.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)

def strip_comments(text: str) -> str:
    """Blanks comments, strings and char literals (so a path inside them is no import)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)

def cfg_test_free(text: str) -> str:
    # Drop `#[cfg(test)] mod tests { ... }`: tests may reach anywhere.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)

def expand_use(body: str) -> list:
    """`a::{b, c::d}` -> ['a::b', 'a::c::d'] (enough for module resolution)."""
    body = body.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", body, flags=re.S)
    if not m:
        return [body.split(" as ")[0].strip()]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur); cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    return [p for it in items if it.strip() for p in expand_use(prefix + it.strip())]

def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    files = {module_of(root, f): f for f in root.rglob("*.rs")}
    edges = {m: set() for m in files}
    for mod, f in files.items():
        text = cfg_test_free(strip_comments(f.read_text()))
        paths = []
        for u in re.finditer(r"\buse\s+([^;]+);", text):
            paths += expand_use(u.group(1))
        paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
        for child in children:
            paths += re.findall(r"(?<![\w:])(" + child + r"(?:::\w+)+)", text)
        for p in paths:
            segs = p.replace(" ", "").split("::")
            if segs[0] == "crate":
                base, segs = [], segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(mod)
                is_dir_mod = f.name == "mod.rs" or f.name in ("lib.rs", "main.rs")
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1]
                    segs = segs[1:]
                if not is_dir_mod and p.startswith("self"):
                    base = list(mod)
            elif segs[0] in children:
                base = list(mod)
            else:
                continue
            target = None
            for k in range(len(segs), -1, -1):
                cand = tuple(base + segs[:k])
                if cand in files:
                    target = cand
                    break
            if target is not None and target != mod:
                edges[mod].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1
        stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)
    for v in files:
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m) or "crate"
    for comp in sccs:
        print("import circle: " + " <-> ".join(sorted(name(m) for m in comp)))
    if not sccs:
        print(f"{root}: no import circles among {len(files)} modules")
    return 1 if sccs else 0

if __name__ == "__main__":
    sys.exit(main())
