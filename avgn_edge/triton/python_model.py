"""A Triton Python-backend model that runs one ONNX stage graph with ONNX Runtime.

``avgn-edge export-triton --platform python`` copies this file as ``<model>/<version>/model.py``
beside the stage's ``model.onnx``. It runs inside Triton's Python stub, so it imports only
NumPy, ONNX Runtime and Triton's own ``triton_python_backend_utils`` (never avgn_edge, which
the server need not have). The session is set up as ``avgn_edge.runtime.ort`` sets up its own
(the config's ``parameters``: threads, graph optimisation, disabled optimisers), so the server
computes what the local ONNX Runtime backend computes.

Dynamic batching hands ``execute`` several requests at once: their inputs are joined along
the batch axis, run in one session call, and the outputs split back per request.
"""

import json
import os

import numpy as np

pb_utils = None          # triton_python_backend_utils, imported when Triton loads the model


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", default)


class TritonPythonModel:
    def initialize(self, args):
        global pb_utils
        import onnxruntime as ort
        import triton_python_backend_utils
        pb_utils = triton_python_backend_utils

        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(_param(config, "intra_op_threads", "1"))
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        optimize = _param(config, "optimize", "1") == "1"
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                         else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        disabled = [s for s in _param(config, "disabled_optimizers", "").split(",") if s]
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"],
                                            disabled_optimizers=disabled or None)
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests):
        try:
            feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
            sizes = [len(f[self.inputs[0]]) for f in feeds]
            joined = {n: np.concatenate([f[n] for f in feeds]) if len(feeds) > 1 else feeds[0][n]
                      for n in self.inputs}
            outs = self.session.run(self.outputs, joined)
        except Exception as exc:             # every request of this batch gets the error
            err = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=err) for _ in requests]
        responses, start = [], 0
        for n in sizes:
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, np.ascontiguousarray(o[start:start + n])) for name, o in zip(self.outputs, outs)]))
            start += n
        return responses
