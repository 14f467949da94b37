"""ONNX Runtime backend: one session per stage (CPU; the CUDA provider where installed)."""

from __future__ import annotations

import logging

import numpy as np

from ..bundle import STAGES, Bundle
from .plan import load_plan

log = logging.getLogger(__name__)

# ONNX Runtime's NCHWc layout pass segfaults on the FP16 decide graph with a dynamic batch (seen
# with 1.32 while creating the session); it is an FP32-CPU layout pass anyway
FP16_DISABLED_OPTIMIZERS = ["NchwcTransformer"]


class OrtBackend:
    """INT8 runs the bundle's ONNX Runtime graph (unsigned activations, ONNX Runtime's fast
    integer kernels; ``avgn-edge quantize --backend ort``) where it has one. ``tensorrt_graph=True``
    runs TensorRT's symmetric Q/DQ graph instead, with graph optimisations off by default: ONNX
    Runtime then computes the exact fake-quantised arithmetic TensorRT will run (its own
    saturating s8s8 kernels would distort it, and are slow on x86); ``optimize=True`` measures
    that graph's speed on ONNX Runtime's kernels. Any precision's ``ort`` entry may also point a
    stage at a rewritten graph (export/ort_rewrites.py: the folded STFT of glance_audio), which
    ``tensorrt_graph=True`` skips too.

    Threads and call sizes per stage: this machine's plan where ``avgn-edge tune`` measured one
    (runtime/plan.py; explicit ``threads`` win), else the work-based rules below.

    ``fuse=True``: besides the stage sessions, graphs joined in memory (ort_fused.py):
    ``encode`` takes the snippets' frames (the glance view is resized and normalised in the
    graph, both glance stages in one call) and ``decision`` runs decide, the crop, focus_local
    and head in one call; ``focus_head`` serves decisions whose frames differ in size. The stage
    sessions stay for everything else (per-stage timing, snippets of mixed sizes). The joined
    sessions hold their own copy of the weights (memory: about twice the stages'). Off by default:
    on the quiet machine they were no faster per clip (0.99x) and served half the real-time
    streams (52 vs 112 batched; docs/performance.md), so the staged layout is what measurement chose."""

    name = "ort"

    def __init__(self, bundle: Bundle, precision: str = "fp32", threads: int | None = None,
                 optimize: bool | None = None, providers: list[str] | None = None, tensorrt_graph: bool = False,
                 fuse: bool = False):
        import onnxruntime as ort

        self.precision, self.threads = precision, threads
        available = ort.get_available_providers()
        self.providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.graph = "tensorrt" if tensorrt_graph or "ort" not in bundle.variants.get(precision, {}) else "ort"
        if optimize is None:
            optimize = default_optimize(precision, self.graph)
        # this machine's measured plan (plan.py, ``avgn-edge tune``) where there is one; explicit threads win
        self.plan = None if threads is not None else load_plan(bundle, precision, ort=self.graph == "ort")
        plan = self.plan or {}
        settings = {stage: session_settings(stage, precision, plan.get(stage, {}).get("threads", threads), optimize,
                                            stage_work(bundle, stage))
                    for stage in STAGES}
        self.sessions = {stage: open_session(bundle.stage_path(stage, precision, ort=self.graph == "ort"),
                                             settings[stage], self.providers)
                         for stage in STAGES}
        self.outputs = {s: [o.name for o in sess.get_outputs()] for s, sess in self.sessions.items()}
        # a plan's one-thread stage whose bigger calls ran faster on all cores: a second session for those
        self.all_cores_from = {s: p["all_cores_from"] for s, p in plan.items() if p.get("all_cores_from")}
        for s in self.all_cores_from:
            self._add(f"{s}@all", open_session(bundle.stage_path(s, precision, ort=self.graph == "ort"),
                                               dict(settings[s], threads=0), self.providers))
        self.chains: set[str] = set()
        self.frames_encoder = self.frames_decider = False
        self.joined_work: dict[str, float] = {}
        self.glance_size = bundle.config.glance_size
        if fuse:
            self._fuse(bundle, settings)
        # the host pipeline splits bigger calls (the manifest's max still applies to the others)
        self.max_batch = {s: 1 for s in ("glance_visual", "glance_audio")
                          if precision != "int8" and (stage_work(bundle, s) or 0.0) >= ONE_SNIPPET_FROM_GMACS}
        if self.plan:
            self.max_batch = {s: p["max_call"] for s, p in self.plan.items() if p.get("max_call")}

    def _fuse(self, bundle: Bundle, settings: dict):
        import onnx

        from .ort_fused import decision_graph, encode_graph, focus_head_graph
        load = lambda s: onnx.load(str(bundle.stage_path(s, self.precision, ort=self.graph == "ort")))
        cfg = bundle.config
        builders = {"encode": lambda: encode_graph(load("glance_visual"), load("glance_audio"), cfg.glance_size,
                                                   cfg.mean, cfg.std),
                    "focus_head": lambda: focus_head_graph(load("focus_local"), load("head")),
                    "decision": lambda: decision_graph(load("decide"), load("focus_local"), load("head"), cfg.patch_size,
                                                       cfg.patch_size / cfg.frame_size, cfg.mean, cfg.std)}
        from .pipeline import CHAINS
        stages = dict(CHAINS, decision=("decide", "focus_local", "head"))
        for chain, build in builders.items():
            work = sum(stage_work(bundle, s) or 0.0 for s in stages[chain])
            st = dict(settings[stages[chain][0]], threads=self.threads if self.threads is not None
                      else (0 if work >= JOINED_THREADS_FROM_GMACS else 1))
            try:
                model = build().SerializeToString()
                sess = open_session(model, st, self.providers)
                if chain == "decision" and st["threads"] == 1:      # a big batch of decisions: all cores
                    self._add("decision@all", open_session(model, dict(st, threads=0), self.providers))
            except Exception as exc:          # a graph the joiner cannot handle: the stages still run it
                log.info("ort: %s stays staged (%s: %s)", chain, type(exc).__name__, exc)
                continue
            self._add(chain, sess)
            self.joined_work[chain] = work
            self.chains.add(chain)
        self.chains -= {"encode", "decision"}           # the pipeline calls these through encode_frames, decide_frames
        self.frames_encoder = "encode" in self.sessions
        self.frames_decider = "decision" in self.sessions

    def _add(self, name: str, sess):
        self.sessions[name] = sess
        self.outputs[name] = [o.name for o in sess.get_outputs()]

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        big = self.all_cores_from.get(stage)
        name = f"{stage}@all" if big and len(next(iter(feeds.values()))) >= big else stage
        return dict(zip(self.outputs[stage], self.sessions[name].run(self.outputs[stage], feeds)))

    def run_chain(self, chain: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call of a joined chain (``chain in self.chains``); feeds it does not take are ignored."""
        names = [i.name for i in self.sessions[chain].get_inputs()]
        return self.run(chain, {n: feeds[n] for n in names})

    def encode_frames(self, frames: np.ndarray, waves: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 frames [N, H, W, 3] (one size) and waves [N, S] -> gmap, gvec, avec in one call."""
        from .ort_fused import glance_matrices
        wy, wxt = glance_matrices(frames.shape[1], frames.shape[2], self.glance_size)
        return self.run("encode", {"frames": frames, "wy": wy, "wxt": wxt, "wave": waves})

    def decide_frames(self, feeds: dict[str, np.ndarray], frames: np.ndarray) -> dict[str, np.ndarray]:
        """decide's feeds and the windows' frames (uint8 [B, T, H, W, 3], time order) -> decide's
        outputs and ``scores``: decide, the crop, focus_local and head in one call (on all cores when
        the batch's work reaches ``JOINED_THREADS_FROM_GMACS``: many streams' decisions at once)."""
        big = len(frames) * self.joined_work["decision"] >= JOINED_THREADS_FROM_GMACS
        return self.run("decision@all" if big and "decision@all" in self.sessions else "decision",
                        {**feeds, "frames": frames})

    def close(self) -> None:
        self.sessions.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# A stage whose item costs at least this many GMACs gets all cores per call, cheaper ones one thread:
# below it the pool's hand-off costs more than the work it splits. The split keeps synth's local
# encoder (0.029 GMACs a decision) on all cores, as measured before (6.2 vs 7.8 ms per clip), and
# synth's glance and decision graphs (<= 0.006) on one; paper's stages (0.03-10.7) all get all
# cores. `avgn-edge bench` times the other choice of every stage beside this one (docs/benchmarks.md).
THREADS_FROM_GMACS = 0.02
# A joined graph (ort_fused.py) gets all cores only where its work per item is clearly heavy: it has
# many small operators (decide's are 82% "other"), and with two threads each of them waits for the
# other thread, which a busy machine preempts. synth's decision (0.031 GMACs), load 4-5 on 2 cores,
# interleaved: 2.20 ms on one thread, 2.55 ms on two (encode: 3.53 vs 4.03), and in a burst of load
# the two-thread form took twice the staged clip. paper's (10.7 GMACs) keeps all cores. A call of
# many streams' decisions whose work reaches it runs on an all-cores session of the same graph
# (the service, 16 replayed streams batched: p95 latency 202-225 ms on one thread vs 144-166 ms staged).
JOINED_THREADS_FROM_GMACS = 0.1
# A float glance stage whose snippet costs at least this many GMACs is called one snippet at a time:
# at a bigger batch its activations leave the cache (paper's FP32 glance at 224 px, interleaved, per
# clip of 16: 171 ms as 16 calls of 1, 186 ms as 4 of 4, 239 ms as 1 of 16). INT8's 1-byte
# activations stay in cache (193 ms as 1 of 16 vs 213 as 16 of 1), and cheaper stages gain from the
# whole batch (synth: 1.07x clips/s batched; docs/benchmarks.md).
ONE_SNIPPET_FROM_GMACS = 0.2


def default_optimize(precision: str, graph: str) -> bool:
    """ONNX Runtime's graph optimisations, unless it runs TensorRT's INT8 Q/DQ graph (see OrtBackend)."""
    return not (precision == "int8" and graph == "tensorrt")


def stage_work(bundle: Bundle, stage: str) -> float | None:
    """GMACs per item of a stage (per snippet for the glance stages), from the manifest."""
    gf = bundle.provenance.get("gflops_per_clip") or {}
    if stage not in gf:
        return None
    return gf[stage] / (bundle.config.num_snippets if stage.startswith("glance") else 1)


def session_settings(stage: str, precision: str, threads: int | None = None, optimize: bool | None = None,
                     work: float | None = None) -> dict:
    """How a stage's session is set up, as plain values (the Triton Python-backend models of
    ``avgn-edge export-triton`` apply the same ones, so a server computes what this backend does).
    ``work``: GMACs per item (``stage_work``); unknown, only the local encoder gets all cores."""
    if threads is None:
        heavy = stage == "focus_local" if work is None else work >= THREADS_FROM_GMACS
        threads = 0 if heavy else 1
    return {"threads": threads, "optimize": precision != "int8" if optimize is None else bool(optimize),
            "disabled_optimizers": FP16_DISABLED_OPTIMIZERS if precision == "fp16" else [],
            "execution": "sequential", "arena": True, "spinning": False}


def open_session(path, settings: dict, providers: list[str] | None = None):
    """An ONNX Runtime session for one stage graph, set up as ``session_settings`` says."""
    import onnxruntime as ort
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), _options(ort, settings),
                                providers=providers or ["CPUExecutionProvider"], disabled_optimizers=settings["disabled_optimizers"] or None)


def _options(ort, settings: dict):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings["threads"]
    opts.log_severity_level = 3
    # Don't let idle pool threads spin: the pipeline interleaves small ONNX Runtime calls with
    # NumPy work (the crop) on the same cores, and spinning threads starve it (measured: the
    # crop went from 0.4 ms alone to 6 ms between sessions).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.get("spinning") else "0")
    level = settings.get("level", "all") if settings["optimize"] else "disabled"
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    opts.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if settings.get("execution") == "parallel"
                           else ort.ExecutionMode.ORT_SEQUENTIAL)
    opts.enable_cpu_mem_arena = settings.get("arena", True)
    return opts


LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}
