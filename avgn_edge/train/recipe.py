"""The training recipe: three stages, as in the glance-and-focus family.

1. ``warmup`` - encoders and auxiliary heads. The local encoder runs densely on all T
   full frames (the dense baseline) and learns, by multiple-instance learning from the
   clip label alone, a per-location class evidence map. The glance-only and audio-only
   heads train their encoders (and are those baselines).
2. ``glance`` - saliency, AESPA + policy and the fusion head, with the local encoder
   frozen. Instead of AdaFocus v1's PPO reward "p(true class | chosen patch) - p(... |
   random patch)", which samples one patch per step, the frozen local encoder scores every
   frame and cell at once; AV-TeST's saliency and the policy's cell scores are trained to
   match that evidence (a soft-target distillation: low variance, no sampling). The head
   trains on teacher-chosen snippets with policy patches and with random patches
   (AdaFocusV2's two passes for input diversity).
3. ``finetune`` - end to end with the model's own choices: top-k by predicted saliency,
   patches at the predicted centres through the differentiable crop (the classification
   loss reaches the patch position), plus the random-patch pass and the distillation
   terms at half weight.

The local encoder stays frozen after warm-up, so the dense baseline evaluated later is
exactly "the local encoder on all T full frames" that AVGN's patches go through; its head
keeps training (on the teacher's frozen features) in every stage, like the glance-only and
audio-only heads, so every baseline sees the same data as AVGN's head.

Data (``Recipe.phases``): the warm-up (local encoder and evidence map) sees event clips at
the benchmark's default noise and distractor levels; the glance and fine-tune stages see
30% background clips and each clip at its own level (noise 0.05-0.65, distractors
0.2-0.9). With background or the ranges from the start, the warm-up found the patterns
far later or not at all within its 350 steps (measured: dense loss 1.4-2.5 at step 100-250
in three runs, against 0.6 at step 100 and 0.04 at 200 without); and a local encoder
trained at one level still reads the patterns at noise 0.6 (dense stays near 99% there):
it is the glance, AV-TeST, the policy and the heads that must learn quiet and noisy streams.
Only clip labels are used: the benchmark's ground truth is for measuring, never training.
The synth recipe's later stages are shorter than before background (150 + 100 steps, were
300 + 200): the warm-up's 350 steps now see one clip set and the later stages another, and
the whole run has to stay within 45 minutes on 2 shared CPU cores.

**Background** (a model whose labels include ``background``: clips where nothing happens).
The heads (dense, glance only, audio only, AVGN's) learn it as a class. The evidence map
answers "which event, and where", so only event clips train it, over the event labels: a
background clip has no place to point at. (Giving background its own MIL logit, absent
everywhere, made it a threshold that the events' sparse evidence had to beat: measured,
the teacher then chose the event's snippets for 52% of its top-2 after 200 warm-up steps,
and the dense loss stalled.) A background clip's distillation targets are its hardest
negatives: the frames and cells with the strongest evidence for *any* event, so AV-TeST and
the policy learn to bring the most event-like snippet and patch to the head, and the head
learns to reject them - what a quiet stream needs (a uniform target would leave the head
to look at random snippets, never at the distractor that nearly fooled it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.synth import TRAIN_DATA, WARMUP_DATA
from ..model.avgn import AVGN, take
from ..model.local import LocalEncoder


@dataclass(frozen=True)
class Recipe:
    batch_size: int
    warmup_steps: int
    glance_steps: int
    finetune_steps: int
    lr: float = 2e-3
    weight_decay: float = 1e-4
    teacher_temperature: float = 1.0
    data: str = TRAIN_DATA                # what ``avgn-edge train`` uses without --data ...
    warmup_data: str = WARMUP_DATA        # ... for the warm-up ("": the same as data)
    frozen: tuple[str, ...] = ()          # modules kept at their (pretrained) weights in every stage
    drop_visual: float = 0.0              # modality dropout: share of clips whose AV head sees no picture ...
    drop_audio: float = 0.0               # ... or no sound (drop_modalities)
    fit_fusion: bool = False              # validation fits the late-fusion weights (model/fusion.py)
    train_rows: tuple[int, ...] = ()      # only these labels' class rows learn (fewshot.py; empty: all)

    def phases(self, data: str | None = None) -> list[tuple["Recipe", str]]:
        """(recipe, data) runs of the training loop: the warm-up on ``warmup_data``, then the rest
        on ``data``; one run when the user gives the data (or the recipe has no warm-up data)."""
        if data or not self.warmup_data or self.warmup_data == self.data:
            return [(self, data or self.data)]
        return [(dataclasses.replace(self, glance_steps=0, finetune_steps=0), self.warmup_data), (self, self.data)]

    @property
    def stages(self) -> list[tuple[str, int]]:
        return [("warmup", self.warmup_steps), ("glance", self.glance_steps), ("finetune", self.finetune_steps)]


RECIPES = {
    "tiny": Recipe(batch_size=8, warmup_steps=60, glance_steps=50, finetune_steps=30),
    "synth": Recipe(batch_size=16, warmup_steps=350, glance_steps=150, finetune_steps=100),
    "paper": Recipe(batch_size=32, warmup_steps=20000, glance_steps=10000, finetune_steps=5000, lr=1e-3, data="",
                    warmup_data=""),
    # the pretrained Lite0 trunks stay frozen (ImageNet features; their outputs are computed once per clip,
    # features.py: what makes training fit a 2-core CPU); the audio projection, AV-TeST, AESPA, the policy,
    # the evidence map and the heads train. FINETUNE_AUDIO below trains the audio trunk as well.
    # modality dropout and late fusion fitted on validation (model/fusion.py): the few training pictures are
    # memorised and mislead on unseen packages (the AV head alone: 13 points below audio-only on test)
    "home": Recipe(batch_size=16, warmup_steps=300, glance_steps=300, finetune_steps=150, data="", warmup_data="",
                   frozen=("glance", "local", "audio.cnn"), drop_visual=0.5, drop_audio=0.15, fit_fusion=True),
}

STAGE_LR = {"warmup": 1.0, "glance": 0.5, "finetune": 0.15}


def trainable(model: AVGN, stage: str, frozen_encoders: tuple[str, ...] = ()) -> list[torch.nn.Parameter]:
    frozen = stage != "warmup"
    for p in list(model.local.parameters()) + list(model.evidence.parameters()):
        p.requires_grad_(not frozen)
    for name in frozen_encoders:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def set_modes(model: AVGN, stage: str, frozen_encoders: tuple[str, ...] = ()):
    model.train()
    if stage != "warmup":
        model.local.eval()       # frozen: keep its batch-norm statistics
    for name in frozen_encoders:
        model.get_submodule(name).eval()


def _inputs(model: AVGN, batch):
    frames, audio, y = batch["frames"], batch["audio"], batch["label"]
    if "gvec" in batch:          # a frozen glance encoder's features, computed once (features.py)
        gmap, gvec = batch["gmap"].float(), batch["gvec"].float()
    else:
        gmap, gvec = model.encode_glance(model.glance_input(frames))
    if "apool" in batch:         # a frozen audio CNN's pooled output: only its projection trains
        avec = F.relu(model.audio.proj(batch["apool"].float()))
    else:
        avec = model.encode_audio(audio)
    return frames, y, gmap, gvec, avec


def drop_modalities(gvec, avec, lvec, p_visual: float, p_audio: float):
    """Modality dropout for the AV head: each clip's visual features (glance and patches) are
    zeroed with probability ``p_visual``, else its audio features with ``p_audio``. The head learns
    to answer from either modality alone instead of leaning on the pictures, which the few training
    photographs make easy to memorise and which do not generalise to unseen packages."""
    if not (p_visual or p_audio):
        return gvec, avec, lvec
    u = torch.rand(gvec.shape[0], device=gvec.device)
    keep_v = (u >= p_visual).to(gvec.dtype)
    keep_a = ((u < p_visual) | (u >= p_visual + p_audio)).to(avec.dtype)
    shape = lambda x, k: k.view(-1, *([1] * (x.dim() - 1)))
    return gvec * shape(gvec, keep_v), avec * shape(avec, keep_a), lvec * shape(lvec, keep_v)


def _av_loss(model: AVGN, recipe: Recipe, y, gvec, avec, lvec, saliency, idx) -> torch.Tensor:
    g, a, l = drop_modalities(gvec, avec, lvec, recipe.drop_visual, recipe.drop_audio)
    return F.cross_entropy(model.av_logits(g, a, l, saliency, idx), y)


def clip_evidence(z: torch.Tensor) -> torch.Tensor:
    """Per-location class evidence [B,T,C,h,w] -> clip logits [B,C]: a soft max over frames and cells."""
    return torch.logsumexp(z.transpose(1, 2).flatten(2), dim=-1)


def _evidence_loss(z: torch.Tensor, y: torch.Tensor, background: int | None) -> torch.Tensor:
    """Multiple-instance loss of the evidence map: which event, somewhere in the clip. It is
    trained on event clips only, over the event labels: a background clip has no place to
    point at (its targets come from the event channels, see ``teacher``)."""
    mil = clip_evidence(z)
    if background is None:
        return F.cross_entropy(mil, y)
    # masks as weights, not as indexing: no shape depends on the data, so the cost estimate's
    # meta-device count (train/cost.py) runs it too
    events = (y != background).to(mil.dtype)
    n = mil.shape[1]
    keep = torch.tensor([c for c in range(n) if c != background], device=mil.device)
    target = (y - (y > background).long()).clamp(max=n - 2)     # a background clip's row weighs 0
    ce = F.cross_entropy(mil.index_select(1, keep), target, reduction="none")
    # a mean over the whole batch (a background clip adds 0), not over its event clips: so
    # processes splitting a batch (torchrun) average to the loss of the batch taken whole
    return (ce * events).sum() / len(y)


def warmup_loss(model: AVGN, batch, recipe: Recipe) -> dict[str, torch.Tensor]:
    frames, y, gmap, gvec, avec = _inputs(model, batch)
    dmaps = _dense_maps(model, batch)                                        # [B,T,D,h,w]
    b, t = dmaps.shape[:2]
    z = model.evidence(dmaps.flatten(0, 1)).view(b, t, -1, *dmaps.shape[-2:])  # [B,T,C,h,w]
    return {"dense": F.cross_entropy(model.dense_logits(gvec, avec, dmaps), y),
            "evidence": _evidence_loss(z, y, model.cfg.background_index),
            "glance_only": F.cross_entropy(model.glance_head(gvec), y),
            "audio_only": F.cross_entropy(model.audio_head(avec), y)}


def _dense_maps(model: AVGN, batch) -> torch.Tensor:
    if "dmaps" in batch:         # a frozen local encoder's dense maps, computed once (features.py)
        return batch["dmaps"].float()
    return model.dense_maps(model.full_input(batch["frames"]))


@torch.no_grad()
def teacher(model: AVGN, frames, y, temperature: float, batch=None):
    """The frozen local encoder's evidence for the true class: per frame [B,T] and per glance
    cell [B,T,hw]; for a background clip, the strongest evidence for any event (its hardest
    negatives). Also its pooled vectors [B,T,Dl] (the dense baseline's input)."""
    dmaps = _dense_maps(model, batch) if batch is not None else model.dense_maps(model.full_input(frames))
    b, t = dmaps.shape[:2]
    z = model.evidence(dmaps.flatten(0, 1))                                  # [BT,C,h,w]
    yt = y.repeat_interleave(t)
    zy = z[torch.arange(b * t), yt]                                          # [BT,h,w]
    bg = model.cfg.background_index
    if bg is not None:
        events = torch.cat([z[:, :bg], z[:, bg + 1:]], dim=1).amax(1)
        zy = torch.where((yt == bg)[:, None, None], events, zy)
    cells = F.adaptive_max_pool2d(zy[:, None], model.glance.map_size).view(b, t, -1)
    return cells.amax(-1) / temperature, cells / temperature, LocalEncoder.pool(dmaps)


def _soft_ce(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    return -(torch.softmax(target_logits, -1) * torch.log_softmax(logits, -1)).sum(-1).mean()


def _random_centres(like: torch.Tensor) -> torch.Tensor:
    return torch.rand_like(like)


def glance_loss(model: AVGN, batch, recipe: Recipe) -> dict[str, torch.Tensor]:
    frames, y, gmap, gvec, avec = _inputs(model, batch)
    frame_ev, cell_ev, dvec = teacher(model, frames, y, recipe.teacher_temperature, batch)
    idx = torch.topk(frame_ev, model.cfg.top_k, dim=1).indices
    d = model.decide(gmap, gvec, avec, indices=idx)
    images = model.full_input(frames)
    with torch.no_grad():
        lvec = model.focus(images, idx, d.centres.detach())
        lvec_rand = model.focus(images, idx, _random_centres(d.centres))
    return {"saliency": _soft_ce(d.saliency, frame_ev),
            "policy": _soft_ce(d.cell_logits, take(cell_ev, idx)),
            "head": _av_loss(model, recipe, y, gvec, avec, lvec, d.saliency, idx),
            "head_random": _av_loss(model, recipe, y, gvec, avec, lvec_rand, d.saliency, idx),
            "glance_only": 0.5 * F.cross_entropy(model.glance_head(gvec), y),
            "audio_only": 0.5 * F.cross_entropy(model.audio_head(avec), y),
            "dense": 0.5 * F.cross_entropy(model.dense_head(gvec, avec, dvec), y)}


def finetune_loss(model: AVGN, batch, recipe: Recipe) -> dict[str, torch.Tensor]:
    frames, y, gmap, gvec, avec = _inputs(model, batch)
    frame_ev, cell_ev, dvec = teacher(model, frames, y, recipe.teacher_temperature, batch)
    d = model.decide(gmap, gvec, avec)
    images = model.full_input(frames)
    lvec = model.focus(images, d.indices, d.centres)                         # differentiable crop
    with torch.no_grad():
        lvec_rand = model.focus(images, d.indices, _random_centres(d.centres))
    return {"avgn": _av_loss(model, recipe, y, gvec, avec, lvec, d.saliency, d.indices),
            "head_random": _av_loss(model, recipe, y, gvec, avec, lvec_rand, d.saliency, d.indices),
            "saliency": 0.5 * _soft_ce(d.saliency, frame_ev),
            "policy": 0.5 * _soft_ce(d.cell_logits, take(cell_ev, d.indices)),
            "dense": 0.5 * F.cross_entropy(model.dense_head(gvec, avec, dvec), y)}


STAGE_LOSSES = {"warmup": warmup_loss, "glance": glance_loss, "finetune": finetune_loss}
