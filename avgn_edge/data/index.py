"""What a dataset holds, read from its layout: a list of ``Item`` (file, label, segment).

Three layouts, as Kinetics/AVE-style tools use them:

* ``DIR/labels.json`` - what ``avgn-edge synth`` writes (files + ground truth: event spans in
  seconds, read by spans.py onto any model's snippets);
* ``DIR/<class>/*.mp4`` - one sub-folder per class (``background/`` is a class like any other);
* a manifest ``list.csv`` / ``list.json``: ``path,label[,start,end]`` per row, paths relative
  to the manifest's folder, ``start``/``end`` in seconds for labelled segments of long
  recordings. A CSV may have a header naming these columns or none (columns in that order);
  ``,``, ``;``, tab and ``&`` are recognised, and AVE's own ``Annotations.txt``
  (``Category&VideoID&Quality&StartTime&EndTime``) reads as it is: a path without a suffix
  is looked up as ``<id>.mp4`` (or another video suffix) beside the list. (Kinetics' CSVs
  give YouTube ids and offsets of clips that downloaders have already cut: list the files.)

Every time in an index is in seconds, never in snippets, so one folder or list serves models
of any T and snippet period. Every mistake in an index is an ``InputError`` naming it; files are only checked to exist
here (decoding is the dataset's business).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..media import VIDEO_SUFFIXES, list_videos

MANIFEST_SUFFIXES = {".csv", ".tsv", ".txt", ".json"}
_COLUMNS = {"path": "path", "file": "path", "videoid": "path", "video_id": "path",
            "label": "label", "class": "label", "category": "label",
            "start": "start", "starttime": "start", "start_time": "start",
            "end": "end", "endtime": "end", "end_time": "end"}


@dataclass(frozen=True)
class Item:
    path: Path
    label: str
    start: float | None = None          # seconds from the start of the file
    end: float | None = None
    truth: dict | None = None           # ground truth (event_snippets, boxes) where known

    @property
    def group(self) -> str:
        """Items of one recording share a group: a validation split never cuts through one."""
        return str(self.path)


def is_index(uri: str) -> bool:
    p = Path(uri)
    return p.is_dir() or (p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)


def read_index(uri: str | Path) -> list[Item]:
    """The items of a folder or manifest, every file checked to exist."""
    root = Path(uri)
    if root.is_dir():
        items = _labels_json(root) if (root / "labels.json").is_file() else _class_folders(root)
    elif root.is_file() and root.suffix.lower() == ".json":
        items = _json_manifest(root)
    elif root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        items = _csv_manifest(root)
    else:
        raise InputError(f"{uri} is neither a folder of videos nor a .csv/.json list of them")
    if not items:
        raise InputError(f"no videos found in {uri}",
                         hint="expected labels.json, one sub-folder of videos per class, or a path,label CSV")
    missing = sorted({str(i.path) for i in items if not i.path.is_file()})
    if missing:
        raise InputError(f"{uri} names {len(missing)} file(s) that do not exist: {', '.join(missing[:3])}"
                         + (" ..." if len(missing) > 3 else ""),
                         hint="paths in a list are relative to the list's own folder")
    return items


def labels_of(items: list[Item]) -> tuple[str, ...]:
    return tuple(sorted({i.label for i in items}))


def declared_labels(uri: str | Path, items: list[Item]) -> tuple[str, ...] | None:
    """The label order a folder declares in benchmark.json (``avgn-edge synth``), if it covers the items."""
    meta = Path(uri) / "benchmark.json"
    try:
        labels = tuple(json.loads(meta.read_text())["labels"]) if meta.is_file() else None
    except (ValueError, KeyError, TypeError):
        return None
    return labels if labels and {i.label for i in items} <= set(labels) else None


def check_labels(items: list[Item], known: tuple[str, ...], what: str):
    unknown = sorted({i.label for i in items} - set(known))
    if unknown:
        raise InputError(f"{what} has label(s) the model does not know: {', '.join(unknown[:5])}",
                         hint=f"the model's labels: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}")


def _labels_json(root: Path) -> list[Item]:
    try:
        entries = json.loads((root / "labels.json").read_text())
        return [Item(root / e["file"], str(e["label"]), truth=e) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{root / 'labels.json'} is not a list of {{file, label}} entries ({exc})") from None


def _class_folders(root: Path) -> list[Item]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [Item(v, c) for c in classes for v in list_videos(root / c)]


def _row(base: Path, where: str, path, label, start=None, end=None) -> Item:
    if not path or not str(path).strip() or label is None or not str(label).strip():
        raise InputError(f"{where}: a row needs a path and a label")
    try:
        s = None if start in (None, "") else float(start)
        e = None if end in (None, "") else float(end)
    except (TypeError, ValueError):
        raise InputError(f"{where}: start/end must be seconds, got {start!r}, {end!r}") from None
    if (s is None) != (e is None) or (s is not None and not 0 <= s < e):
        raise InputError(f"{where}: a segment needs 0 <= start < end, got {start!r}, {end!r}")
    return Item(_video_path(base, str(path).strip()), str(label).strip(), s, e)


def _video_path(base: Path, name: str) -> Path:
    p = base / name
    if p.suffix or p.is_file():
        return p
    for suffix in sorted(VIDEO_SUFFIXES):
        if p.with_name(p.name + suffix).is_file():
            return p.with_name(p.name + suffix)
    return p


def _csv_manifest(path: Path) -> list[Item]:
    text = path.read_text()
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t&")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(text.splitlines(), dialect) if r and any(c.strip() for c in r)]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    named = {_COLUMNS[c] for c in head if c in _COLUMNS}
    if {"path", "label"} <= named:
        cols = {_COLUMNS[c]: i for i, c in enumerate(head) if c in _COLUMNS}
        body, first = rows[1:], 2
    else:
        cols, body, first = {"path": 0, "label": 1, "start": 2, "end": 3}, rows, 1
    items = []
    for n, r in enumerate(body, first):
        get = lambda k: r[cols[k]] if k in cols and cols[k] < len(r) else None
        items.append(_row(path.parent, f"{path.name} line {n}", get("path"), get("label"), get("start"), get("end")))
    return items


def _json_manifest(path: Path) -> list[Item]:
    try:
        rows = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path} must hold a list of {{path, label[, start, end]}} objects")
    return [_row(path.parent, f"{path.name} entry {n}", r.get("path", r.get("file")), r.get("label"),
                 r.get("start"), r.get("end")) for n, r in enumerate(rows, 1)]
