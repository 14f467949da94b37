"""The real set's manifest: every source file used, where it is in which package, its label,
licence, attribution, duration, split and label check.

``build`` expands the catalog's rules over the cached package extractions (a maintainer step:
its output, manifest.json beside this file, is committed); ``load`` reads the committed one;
``problems`` lists what is wrong with a manifest against the cache (the tests' check).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path

from ...errors import InputError
from . import catalog, sources
from .packages import fetch

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("manifest.json")
SPLITS = ("train", "val", "test")
# material a rule matches that is NOT used (a label check by listening or by the reference model)
EXCLUDE = {"*aglev*": "music, not a vehicle (realdata.md)"}


def _hash01(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _expand(name: str, root: Path, kind: str, role: str, patterns: list[str]) -> list[dict]:
    version, source, split, licence = catalog.PACKAGES[name]
    base = {"package": name, "version": version, "source": source, "kind": kind, "label": role, "split": split}
    doc = "the wheel's METADATA" if source == "pypi" else f"/usr/share/doc/{name}/copyright"
    out, drop = [], [p[1:] for p in patterns if p.startswith("!")]
    patterns = [p for p in patterns if not p.startswith("!")]
    if name == "openttd-opensfx":
        for i, (clip, _, _) in enumerate(sources.opensfx_members(str(root / catalog.OPENSFX.lstrip("/")))):
            if any(fnmatch.fnmatchcase(clip, p) for p in patterns):
                out.append(dict(base, path=catalog.OPENSFX, member=i, licence=sources.opensfx_licence(clip),
                                attribution=clip))
        return out
    for p in patterns:
        hits = sorted(root.glob(p.lstrip("/")))
        if not hits:
            log.warning("%s: nothing matches %s", name, p)
        for f in hits:
            if any(fnmatch.fnmatchcase(str(f), d) for d in drop):
                continue
            out.append(dict(base, path="/" + str(f.relative_to(root)), member=None, licence=licence,
                            attribution=f"{f.name} from the {source} package {name} {version} (see {doc})"))
    return out


def source_key(e: dict) -> str:
    """The recording an entry was made from: opensfx edits several clips from one Freesound original
    (``Original "file0375.mp3"``), and those must stay in one split."""
    m = re.search(r'Original "([^"]+)"', e.get("attribution") or "")
    if m:
        return f"{e['package']}:{m.group(1)}"
    if e.get("kind") == "picture":     # poses of one subject: anjuli-1..5.gif, gnu-baby/gnu-stand.png, dog1-a.png
        p = Path(e["path"])
        return f"{e['package']}:{p.parent}/{re.split(r'[-0-9]', p.stem)[0] or p.stem}"
    return f"{e['package']}:{e['path']}#{e['member']}"


def _assign_val(entries: list[dict]):
    groups = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e["split"] == "train":
            groups[(e["package"], e["kind"], e["label"])][source_key(e)].append(e)
    for (_, kind, _), by_source in groups.items():
        if len(by_source) < (2 if kind == "picture" else 3):
            continue
        ranked = sorted(by_source, key=_hash01)
        for key in ranked[:max(1, int(round(catalog.VAL_SHARE * len(by_source))))]:
            for e in by_source[key]:
                e["split"] = "val"


def build(check: bool = True, root: Path | None = None) -> dict:
    """The manifest from the catalog over the (fetched, cached) packages."""
    entries, dropped, seen = [], [], set()
    roots = {n: fetch(n, v, s, root) for n, (v, s, _, _) in catalog.PACKAGES.items()}
    for name, kind, role, patterns in catalog.RULES:
        for e in _expand(name, roots[name], kind, role, patterns):
            key = (e["package"], e["path"], e["member"])
            if key in seen:                      # the first rule that matches a file wins
                continue
            seen.add(key)
            text = f"{e['path']} {e.get('attribution', '')}"
            why = next((w for p, w in EXCLUDE.items() if fnmatch.fnmatchcase(text, p)), None)
            if why:
                dropped.append(dict(e, reason=why))
                continue
            e["duration"] = sources.duration(e, root) if kind != "picture" else 0.0
            entries.append(e)
    if check:
        from .labelcheck import check_entries
        kept, failed = check_entries(entries, root)
        entries, dropped = kept, dropped + failed
    _assign_val(entries)
    for e in entries:        # stable across catalog changes: clips.json of older builds stay readable
        e["id"] = hashlib.sha1(f"{e['package']}:{e['path']}#{e['member']}".encode()).hexdigest()[:10]
    assert len({e["id"] for e in entries}) == len(entries)
    return {"version": 1, "packages": {n: {"version": v, "source": s, "split": sp, "licence": lic}
                                       for n, (v, s, sp, lic) in catalog.PACKAGES.items()},
            "entries": entries, "dropped": dropped, "layout": layout_text()}


def layout_text() -> str:
    from .compose import LAYOUT
    return LAYOUT


def load(path: Path | None = None) -> dict:
    p = Path(path or MANIFEST)
    if not p.exists():
        raise InputError(f"no real-set manifest at {p}", hint="build one with `avgn-edge realset manifest`")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{p} is not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(m, dict) or not isinstance(m.get("entries"), list):
        raise InputError(f"{p} has no list of entries")
    return m


def problems(m: dict, root: Path | None = None, check_files: bool = True) -> list[str]:
    """Everything wrong with a manifest: missing files or licences, a file in two splits, a
    test package that training also uses."""
    out, where = [], defaultdict(set)
    pkg_splits = defaultdict(set)
    for e in m["entries"]:
        tag = f"{e.get('package')}:{e.get('path')}" + (f"#{e['member']}" if e.get("member") is not None else "")
        for k in ("package", "version", "path", "kind", "label", "split", "licence", "attribution"):
            if not e.get(k):
                out.append(f"{tag}: no {k}")
        if e.get("split") not in SPLITS:
            out.append(f"{tag}: split {e.get('split')!r}")
        if e.get("label") not in catalog.ROLES:
            out.append(f"{tag}: label {e.get('label')!r}")
        where[tag].add(e.get("split"))
        where[source_key(e)].add(e.get("split"))
        pkg_splits[e.get("package")].add(e.get("split"))
        if check_files:
            try:
                f = sources.entry_file(e, root)
            except Exception as exc:
                out.append(f"{tag}: {exc}")
                continue
            if not f.is_file():
                out.append(f"{tag}: not in the package")
            elif e.get("member") is not None:
                members = sources.opensfx_members(str(f))
                if not 0 <= int(e["member"]) < len(members) or members[int(e["member"])][0] != e["attribution"]:
                    out.append(f"{tag}: member {e['member']} is not {e['attribution'][:40]!r}")
    out += [f"{t}: in {sorted(s)}" for t, s in where.items() if len(s) > 1]
    out += [f"{p}: test package also in {sorted(s - {'test'})}" for p, s in pkg_splits.items()
            if "test" in s and len(s) > 1]
    return out


def counts(m: dict) -> dict:
    """Distinct source files per split, kind and label."""
    c = Counter((e["split"], e["kind"], e["label"]) for e in m["entries"])
    out: dict = {}
    for (s, k, lab), n in sorted(c.items()):
        out.setdefault(s, {}).setdefault(k, {})[lab] = n
    return out


def save(m: dict, path: Path | None = None) -> Path:
    """One entry per line (a readable diff when the catalog changes)."""
    p = Path(path or MANIFEST)
    parts = []
    for k, v in m.items():
        if isinstance(v, list):
            rows = ",\n".join("  " + json.dumps(x, ensure_ascii=False, sort_keys=True) for x in v)
            parts.append(f"{json.dumps(k)}: [\n{rows}\n ]")
        else:
            parts.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
    p.write_text("{\n " + ",\n ".join(parts) + "\n}\n")
    return p


def table(m: dict) -> str:
    """Markdown: files and DISTINCT sources (recordings; subjects of pictures) per label, kind and
    split, with their packages."""
    rows = ["| label | kind | train | val | test |", "|---|---|---|---|---|"]
    for lab in catalog.ROLES:
        for kind in ("sound", "picture", "video"):
            cells, any_ = [], False
            for s in SPLITS:
                es = [e for e in m["entries"] if e["label"] == lab and e["kind"] == kind and e["split"] == s]
                any_ |= bool(es)
                pk = Counter(e["package"] for e in es)
                n_src = len({source_key(e) for e in es})
                cells.append(f"{len(es)} / {n_src} ({', '.join(f'{p} {n}' for p, n in sorted(pk.items()))})"
                             if es else "0")
            if any_:
                rows.append(f"| {lab} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
