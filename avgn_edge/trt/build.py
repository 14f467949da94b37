"""Bundle -> TensorRT engines, cached; the same code on TensorRT 10.3 (JetPack 6) and 11.x.

Networks are strongly typed: precision comes from the bundle's ONNX (FP16 graph or INT8 Q/DQ),
never from builder flags, which TensorRT 11 removed. ``plan`` decides per stage, without
TensorRT, which engine file is wanted and whether the cached one can be reused; it backs
``build-engines --dry-run``. ``build_engines`` needs TensorRT and a GPU.

TensorRT objects live in variables with conventional names (``builder``, ``network``,
``parser``, ``config``, ``runtime``, ``engine``, ``plan``, ...): tests/trt/test_trt.py checks every
attribute used on them against the names in TensorRT 10.3's and 11.4's Python bindings.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..bundle import STAGES, Bundle, StageSpec, sha256
from ..deps import CUDA_HINT
from ..errors import EngineError, MissingDependency
from .cache import (UNKNOWN, EngineKey, check_cached, engine_filename, io_spec, read_l4t_release, read_sidecar,
                    resolve_cache_dir, store_engine, timing_cache_path, write_atomic)

_log = logging.getLogger(__name__)
DEFAULT_WORKSPACE_MIB = 1024     # Jetson-safe: an unbounded pool lets tactics exhaust shared memory
DEFAULT_OPT_LEVEL = 3            # TensorRT's own default
TRT_HINT = ("Jetson: JetPack >= 6.1 ships TensorRT 10.3 for the system Python; use a venv made with "
            "--system-site-packages (sudo apt install nvidia-jetpack if it is missing). x86 with a CUDA GPU: "
            "pip install 'avgn-edge[trt-cu12]' (tensorrt-cu12, CUDA 12 driver) or 'avgn-edge[trt]' (CUDA 13). "
            "No GPU: AVGN_EMULATE_GPU=1 runs the TensorRT path on avgn-edge's emulated one")
GPU_HINT = "engines are built on the GPU that will run them; check nvidia-smi (x86) or that JetPack is installed"
NO_TRT = "TensorRT not available to check cached engines"
NO_GPU = "no CUDA GPU visible to check cached engines"
_TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64",
               "INT8": "int8", "UINT8": "uint8", "BOOL": "bool", "FP8": "float8_e4m3fn"}


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingDependency(f"TensorRT is not installed ({exc}); on Jetson it comes with JetPack >= 6.1",
                                hint=TRT_HINT) from None
    return trt


def device_info(index: int = 0) -> dict:
    """GPU name, compute capability and CUDA driver version via cuda.bindings (no TensorRT needed)."""
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver          # cuda-python < 12.6 layout
        except ImportError as exc:
            raise MissingDependency(f"cuda-python is not installed ({exc})", hint=CUDA_HINT) from None

    def call(fn, *args):
        err, *rest = fn(*args)
        if err != driver.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"{getattr(fn, '__name__', 'CUDA call')} returned {err}")
        return rest[0] if rest else None

    attr = driver.CUdevice_attribute
    try:
        call(driver.cuInit, 0)
        dev = call(driver.cuDeviceGet, index)
        name = call(driver.cuDeviceGetName, 256, dev)
        major = call(driver.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
        minor = call(driver.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
        version = call(driver.cuDriverGetVersion)
    except Exception as exc:                         # no driver library, no device, driver too old ...
        raise EngineError(f"no usable CUDA GPU ({str(exc).splitlines()[0][:160]})", hint=GPU_HINT) from None
    name = name.split(b"\0", 1)[0].decode(errors="replace") if isinstance(name, bytes) else str(name)
    return {"gpu_name": name.strip(), "compute_capability": f"{major}.{minor}",
            "cuda_driver_version": f"{version // 1000}.{version % 1000 // 10}"}


@dataclass(frozen=True)
class Environment:
    trt_version: str = UNKNOWN
    gpu_name: str = UNKNOWN
    compute_capability: str = UNKNOWN
    cuda_driver_version: str = UNKNOWN
    l4t_release: str = ""
    problem: str | None = NO_TRT     # why cached engines cannot be validated, None when they can


def probe_environment() -> Environment:
    """What the cache key needs from this machine; never raises (unknowns + ``problem`` instead)."""
    l4t = read_l4t_release()
    try:
        trt = import_tensorrt()
    except MissingDependency:
        return Environment(l4t_release=l4t)
    try:
        dev = device_info()
    except (EngineError, MissingDependency):
        return Environment(trt_version=trt.__version__, l4t_release=l4t, problem=NO_GPU)
    return Environment(trt_version=trt.__version__, l4t_release=l4t, problem=None, **dev)


@dataclass(frozen=True)
class PlanItem:
    stage: str
    onnx_path: Path
    engine_path: Path
    key: EngineKey
    hit: bool
    reason: str


def stage_key(bundle: Bundle, stage: str, precision: str, env: Environment, workspace_mib: int,
              opt_level: int = DEFAULT_OPT_LEVEL) -> EngineKey:
    rel = bundle.variants[precision]["files"][stage]
    spec = bundle.stages[stage]
    digest = bundle.files.get(rel) or sha256(bundle.root / rel)
    return EngineKey(stage=stage, precision=precision, onnx_sha256=digest,
                     trt_version=env.trt_version, gpu_name=env.gpu_name,
                     compute_capability=env.compute_capability, cuda_driver_version=env.cuda_driver_version,
                     l4t_release=env.l4t_release, inputs=io_spec(spec.inputs), outputs=io_spec(spec.outputs),
                     batch=(spec.batch.min, spec.batch.opt, spec.batch.max), workspace_mib=int(workspace_mib), builder_optimization_level=int(opt_level))


def plan(bundle: Bundle, precision: str, out_dir=None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
         force: bool = False, env: Environment | None = None, log=print) -> list[PlanItem]:
    """Per stage: the engine file wanted and whether the cached one is reusable (no TensorRT calls)."""
    env = probe_environment() if env is None else env
    folder = resolve_cache_dir(out_dir, log=log)
    items = []
    for stage in STAGES:
        onnx_path = bundle.stage_path(stage, precision)       # InputError if the variant is missing
        key = stage_key(bundle, stage, precision, env, workspace_mib)
        path = folder / engine_filename(key)
        if env.problem:
            hit, reason = False, env.problem + _previous_build(folder, stage, precision)
        elif force:
            hit, reason = False, "--force"
        else:
            hit, reason = check_cached(path, key)
        items.append(PlanItem(stage, onnx_path, path, key, hit, reason))
    return items


def _previous_build(folder: Path, stage: str, precision: str) -> str:
    """Without TensorRT we cannot validate, but we can say what an existing engine was built for."""
    for sidecar in sorted(folder.glob(f"{stage}.{precision}.*.json")) if folder.is_dir() else []:
        try:
            k = read_sidecar(sidecar.with_suffix(".engine"))["key"]
        except ValueError:
            continue
        return f" (found {sidecar.with_suffix('.engine').name}: TensorRT {k.get('trt_version')} on {k.get('gpu_name')})"
    return ""


@functools.lru_cache(maxsize=None)
def trt_logger(trt):
    """The process's one TensorRT logger. TensorRT keeps the first logger it is given for every later
    builder and runtime, so a logger per build would collect another stage's errors: this one keeps
    the errors (and internal errors) for messages until ``take()``; the chatter goes to debug."""
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))
            else:
                _log.debug("TensorRT: %s", msg)

        def take(self) -> list[str]:
            out, self.errors = self.errors, []
            return out
    return Logger()


def engine_io(trt, engine) -> list[tuple[str, bool, tuple[int, ...], str]]:
    """(name, is_input, shape, numpy dtype name) of every I/O tensor of a deserialized engine."""
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        kind = str(engine.get_tensor_dtype(name)).rsplit(".", 1)[-1]      # "DataType.HALF" -> "HALF"
        out.append((name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                    tuple(engine.get_tensor_shape(name)), _TRT_DTYPES.get(kind, kind.lower())))
    return out


def io_problems(spec: StageSpec, io) -> list[str]:
    """Differences between an engine's I/O and the bundle's StageSpec (empty = they match)."""
    want = {t.name: (True, tuple(t.shape), t.dtype) for t in spec.inputs}
    want.update({t.name: (False, tuple(t.shape), t.dtype) for t in spec.outputs})
    have = {name: (is_in, tuple(shape), dtype) for name, is_in, shape, dtype in io}
    problems = [f"missing {'input' if w[0] else 'output'} '{n}'" for n, w in want.items() if n not in have]
    problems += [f"unexpected tensor '{n}'" for n in have if n not in want]
    for n in want.keys() & have.keys():
        (wi, ws, wd), (hi, hs, hd) = want[n], have[n]
        if wi != hi:
            problems.append(f"'{n}' is an {'input' if hi else 'output'} in the engine")
        if ws != hs or wd != hd:
            problems.append(f"'{n}' is {hd}{list(hs)} in the engine, {wd}{list(ws)} in the bundle")
    return problems


def build_stage(trt, item: PlanItem, spec: StageSpec, timing_cache_file: Path, log=print):
    """Parse, build, verify by deserializing, then store engine + sidecar and the timing cache.
    Returns the deserialized engine."""
    key, start = item.key, time.perf_counter()
    collector = trt_logger(trt)        # ours, not a TensorRT object: .take()
    collector.take()                                                # errors of earlier work are not this stage's
    builder = trt.Builder(collector)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, collector)
    if not parser.parse_from_file(str(item.onnx_path)):          # resolves external weights too
        errors = []
        for i in range(parser.num_errors):
            parser_error = parser.get_error(i)
            errors.append(f"node {parser_error.node()} '{parser_error.node_name()}' "
                          f"({parser_error.node_operator()}): {parser_error.desc()}")
        raise EngineError(f"TensorRT cannot parse {item.onnx_path.name}: " + "; ".join(errors or collector.take()),
                          hint="check the export with avgn_edge.export.trt_support.check_graph")
    config = builder.create_builder_config()
    # one optimization profile over the dynamic leading batch: the manifest's min/opt/max (in the key)
    profile = builder.create_optimization_profile()
    lo, opt, hi = key.batch
    for t in spec.inputs:
        profile.set_shape(t.name, t.at(lo), t.at(opt), t.at(hi))
    if config.add_optimization_profile(profile) < 0:
        raise EngineError(f"TensorRT refused the batch profile {list(key.batch)} for {item.stage} "
                          f"({'; '.join(collector.take()[-2:]) or 'no details'})")
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, key.workspace_mib << 20)
    config.builder_optimization_level = key.builder_optimization_level
    # no FP16/INT8 flags: the network is strongly typed, precision is in the ONNX
    previous = timing_cache_file.read_bytes() if timing_cache_file.is_file() else b""
    timing_cache = config.create_timing_cache(previous)
    if timing_cache is None or not config.set_timing_cache(timing_cache, ignore_mismatch=False):
        log(f"  timing cache {timing_cache_file.name} does not fit this TensorRT/GPU; starting a fresh one")
        collector.take()
        timing_cache = config.create_timing_cache(b"")
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
    plan_bytes = builder.build_serialized_network(network, config)
    if plan_bytes is None:
        raise EngineError(f"TensorRT failed to build {item.stage} ({'; '.join(collector.take()[-3:]) or 'no details'})",
                          hint=f"out of memory is the usual cause on Jetson: try --workspace "
                               f"{max(key.workspace_mib // 2, 64)}, close other programs, add swap")
    engine_bytes = bytes(plan_bytes)
    runtime = trt.Runtime(collector)
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise EngineError(f"the engine built for {item.stage} does not deserialize ({'; '.join(collector.take()[-3:])})")
    problems = io_problems(spec, engine_io(trt, engine))
    if problems:
        raise EngineError(f"the {item.stage} engine does not match the bundle: " + "; ".join(problems),
                          hint="re-export the bundle; its manifest and ONNX disagree")
    seconds = time.perf_counter() - start
    store_engine(item.engine_path, engine_bytes, key, engine_sha256=hashlib.sha256(engine_bytes).hexdigest(),
                 onnx_file=str(item.onnx_path), build_seconds=round(seconds, 1),
                 built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    write_atomic(timing_cache_file, bytes(config.get_timing_cache().serialize()))
    return engine


def load_engines(bundle: Bundle, precision: str, out_dir=None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                 force: bool = False, log=print) -> list[tuple[PlanItem, object]]:
    """Every stage's engine, deserialized, in STAGES order: cached ones reused, the others built.
    A cached engine that does not deserialize (another TensorRT wrote it, or it is corrupt) is
    rebuilt, with a message saying why."""
    trt = import_tensorrt()
    env = Environment(trt_version=trt.__version__, l4t_release=read_l4t_release(), problem=None, **device_info())
    items = plan(bundle, precision, out_dir, workspace_mib, force, env=env, log=log)
    folder = items[0].engine_path.parent
    timing = timing_cache_path(folder, env.trt_version, env.gpu_name, env.compute_capability)
    collector = trt_logger(trt)        # ours, not a TensorRT object: .take()
    runtime = trt.Runtime(collector)
    out = []
    for item in items:
        reason = item.reason
        if item.hit:
            collector.take()
            engine = runtime.deserialize_cuda_engine(item.engine_path.read_bytes())
            if engine is not None:
                log(f"{item.stage}: cached {item.engine_path}")
                out.append((item, engine))
                continue
            why = "; ".join(collector.take()[-2:]) or "no details"
            reason = f"the cached engine does not deserialize with TensorRT {env.trt_version}: {why}"
        log(f"{item.stage}: building {item.engine_path.name} ({reason}); this can take minutes ...")
        t0 = time.perf_counter()
        engine = build_stage(trt, item, bundle.stages[item.stage], timing, log=log)
        log(f"{item.stage}: built in {time.perf_counter() - t0:.0f} s")
        out.append((item, engine))
    return out


def build_engines(bundle: Bundle, precision: str, out_dir=None, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                  force: bool = False, log=print) -> list[Path]:
    """Build (or reuse, after checking it deserializes) one engine per stage; the paths in STAGES order."""
    return [item.engine_path for item, _ in load_engines(bundle, precision, out_dir, workspace_mib, force, log)]
