"""The student side of the hidden checks: a server that runs the student's code and answers plain requests.

    python -I -m course.grading.student_side FOLDER      (requests on stdin, answers on stdout; see serve())

It holds nothing secret: no reference solution, no check code, no token, no verdict. It rebuilds the student's
``models.py``/``solver.py`` in memory from the ``%%writefile`` cells of ``FOLDER/01_models.ipynb`` and
``02_solver.ipynb`` and does what the trusted side (``checks/``) asks: build a class, run forward on given
tensors, report structure or a state_dict, set parameters, run one training epoch on the kit's small networks with
recording optimizers and scalers. The trusted side decides every verdict from the answers, which it treats as
untrusted data: an answer that matches its oracle on inputs drawn at check time is correct work, anything else
(a wrong value, a lie, garbage, silence) fails.

Requests and answers are frames (:mod:`.student_wire`: a length, then ``torch.save`` of plain data read back with
``torch.load(weights_only=True)``); the kit's networks and recorders the training checks hand the student's epoch are
:mod:`.training_fixtures`. This file is kit code without secrets, like those two: the grader sends the three sources
to the sandbox, which cannot see ``course/`` (``student_wire.BOOT``).
"""
from __future__ import annotations

import os
import struct
import sys

from .student_wire import FRAME_LENGTH, MAX_REQUEST, decode, encode, read_exact, write_all
from .training_fixtures import Recorder, RecordingScaler, kit_discriminator, kit_upscaler, kit_vgg

# torch.nn layer kinds reported by "describe" (isinstance, so subclasses count as their torch.nn kind)
KINDS = ("Conv2d", "BatchNorm2d", "PReLU", "LeakyReLU", "ReLU", "Tanh", "Sigmoid", "PixelShuffle", "Linear",
         "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
ATTRS = ("kernel_size", "stride", "in_channels", "out_channels", "upscale_factor", "negative_slope",
         "in_features", "out_features", "num_parameters")


class Refused(Exception):
    """A request the student's code cannot serve; ``args[0]`` is a plain dict for the trusted side."""


def _plain(value):
    """A value returned by student code, as plain data: numbers, tensors (detached copies), dicts and lists of
    them; anything else becomes ``{"type": name}``."""
    import torch

    if isinstance(value, bool) or value is None:
        return {"type": type(value).__name__}
    if isinstance(value, (int, float)):
        return float(value)
    if torch.is_tensor(value):
        return {"tensor": value.detach().to("cpu").clone()}
    if isinstance(value, dict) and len(value) <= 16:
        return {"dict": {str(k)[:50]: _plain(v) for k, v in value.items()}}
    return {"type": type(value).__name__}


class Server:
    def __init__(self, folder: str):
        self.folder = folder
        self.modules: dict = {}
        self.objects: dict = {}

    # modules, rebuilt in memory from the notebooks (never a .py found on disk; no temporary folder)
    def module(self, name: str):
        from sr_utils.notebook import MODULE_NOTEBOOKS, MissingWritefile, module_from_source, writefile_module

        if name == "solver":
            self.module("models")  # a solver may `import models`
        if name not in self.modules:
            filename = f"{name}.py"
            notebook = MODULE_NOTEBOOKS[filename]
            try:
                text = writefile_module(os.path.join(self.folder, notebook), filename)
            except FileNotFoundError:
                raise Refused({"kind": "no_notebook", "notebook": notebook}) from None
            except MissingWritefile:
                raise Refused({"kind": "no_writefile", "notebook": notebook, "module": filename}) from None
            import torch

            torch.manual_seed(0)
            self.modules[name] = module_from_source(text, name, os.path.join(self.folder, filename))
        return self.modules[name]

    def obj(self, handle):
        if handle not in self.objects:
            raise Refused({"kind": "no_object"})
        return self.objects[handle]

    def enter_folder(self) -> None:
        """Work in the submission folder, which nbgrader may have made (again) after this process started."""
        try:
            if os.getcwd() == self.folder:
                return
        except OSError:  # the folder this process started in was removed
            pass
        try:
            os.chdir(self.folder)
        except OSError:
            pass

    def handle(self, req):
        self.enter_folder()
        op = req["op"]
        fn = getattr(self, f"op_{op}", None)
        if fn is None:
            raise Refused({"kind": "unknown_op"})
        return fn(req)

    def op_reset(self, req):
        """Forget the objects of earlier checks (the modules stay: they are rebuilt from the same notebooks)."""
        self.objects.clear()
        import gc

        gc.collect()
        return {}

    def op_warm(self, req):
        """Pay now for what the first optimizer costs (torch imports ``torch._dynamo`` then), not during a check."""
        import torch

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
        return {}

    def op_load(self, req):
        module = self.module(req["module"])
        return {"names": sorted(n for n in dir(module) if not n.startswith("__"))[:500]}

    def op_new(self, req):
        import torch

        module = self.module("models")
        cls = getattr(module, req["cls"], None)
        if cls is None:
            raise Refused({"kind": "no_class", "cls": req["cls"]})
        torch.manual_seed(req.get("seed", 0))
        obj = cls(*req.get("args", []), **req.get("kwargs", {}))
        if not isinstance(obj, torch.nn.Module):
            raise Refused({"kind": "not_module"})
        handle = len(self.objects)
        self.objects[handle] = obj
        return {"h": handle}

    def op_describe(self, req):
        from torch import nn

        model = self.obj(req["h"])
        mods = []
        for path, m in model.named_modules():
            kind = next((k for k in KINDS if isinstance(m, getattr(nn, k))), "")
            attrs = {}
            for a in ATTRS:
                v = getattr(m, a, None) if kind else None
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    attrs[a] = float(v)
                elif isinstance(v, tuple) and all(isinstance(x, int) for x in v):
                    attrs[a] = [int(x) for x in v]
            own = [int(p.numel()) for p in m.parameters(recurse=False)]
            mods.append({"path": path, "kind": kind, "attrs": attrs, "own_params": own})
        params = [[n, list(p.shape)] for n, p in model.named_parameters()]
        methods = [n for n in ("initialize_with_srresnet",) if callable(getattr(model, n, None))]
        return {"modules": mods, "params": params, "methods": methods,
                "n_params": int(sum(p.numel() for p in model.parameters()))}

    def op_mode(self, req):
        self.obj(req["h"]).train(req["train"])
        return {}

    def op_forward(self, req):
        """Run forward on each input; optionally count the calls of layers holding parameters, list the layers
        holding state in the order they are first called, and capture the inputs/outputs of named layers in call
        order."""
        import torch

        model = self.obj(req["h"])
        if req.get("train") is not None:
            model.train(req["train"])
        calls, captured, handles, order = {}, [], [], []
        named = dict(model.named_modules())
        if req.get("count_calls"):
            for path, m in named.items():
                if any(True for _ in m.parameters(recurse=False)):
                    calls[path] = 0
                    handles.append(m.register_forward_hook(
                        lambda mod, i, o, path=path: calls.__setitem__(path, calls[path] + 1)))
        if req.get("call_order"):  # layers holding tensors of the state_dict, in the order forward first calls them
            for path, m in named.items():
                if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
                    handles.append(m.register_forward_pre_hook(
                        lambda mod, i, path=path: order.append(path) if path not in order else None))
        for path, what in req.get("capture", []):
            if path in named:
                if what == "input":
                    handles.append(named[path].register_forward_pre_hook(
                        lambda mod, inp, path=path: captured.append([path, "input", inp[0].detach().clone()])))
                else:
                    handles.append(named[path].register_forward_hook(
                        lambda mod, inp, out, path=path: captured.append([path, "output", out.detach().clone()])))
        outs = []
        try:
            with torch.no_grad():
                for x in req["inputs"]:
                    out = model(x)
                    outs.append(out.detach().clone() if torch.is_tensor(out) else {"type": type(out).__name__})
        finally:
            for h in handles:
                h.remove()
        return {"outs": outs, "calls": calls, "captured": captured, "order": order}

    def op_set(self, req):
        """``values``: {parameter or buffer name: tensor | ["fill", v] | ["add", v]}."""
        import torch

        model = self.obj(req["h"])
        named = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        with torch.no_grad():
            for name, value in req["values"].items():
                if name not in named:
                    raise Refused({"kind": "no_param", "name": name[:100]})
                t = named[name]
                if torch.is_tensor(value):
                    t.copy_(value)
                elif value[0] == "fill":
                    t.fill_(value[1])
                elif value[0] == "add":
                    t.add_(value[1])
        return {}

    def op_state_dict(self, req):
        import torch

        sd = self.obj(req["h"]).state_dict()
        return {"state": {str(k): v.detach().clone() for k, v in sd.items() if torch.is_tensor(v)}}

    def op_call(self, req):
        """``model.<method>(*args)`` for the methods the assignment defines (initialize_with_srresnet)."""
        if req["method"] not in ("initialize_with_srresnet", "load_state_dict"):
            raise Refused({"kind": "unknown_method"})
        getattr(self.obj(req["h"]), req["method"])(*req.get("args", []))
        return {}

    def _epoch_setup(self, fn_name):
        solver = self.module("solver")
        fn = getattr(solver, fn_name, None)
        if not callable(fn):
            raise Refused({"kind": "no_function", "name": fn_name})
        return fn

    def op_srresnet_epoch(self, req):
        import torch

        fn = self._epoch_setup("train_srresnet_epoch")
        model = kit_upscaler()
        model.load_state_dict(req["model"])
        opt = torch.optim.SGD(model.parameters(), lr=req["lr"])
        rec = Recorder(opt, model.parameters())
        scaler = RecordingScaler() if req.get("scaler") else None
        kwargs = {"amp": False, "scaler": scaler} if scaler else {}
        loss = fn(model, [(lr.clone(), hr.clone()) for lr, hr in req["batches"]], opt, torch.device("cpu"), **kwargs)
        return {"grads": rec.grads, "params": [p.detach().clone() for p in model.parameters()],
                "loss": _plain(loss), "scaler_calls": scaler.calls if scaler else None}

    def op_srgan_epoch(self, req):
        import torch

        fn = self._epoch_setup("train_srgan_epoch")
        g, d = kit_upscaler(), kit_discriminator()
        g.load_state_dict(req["g"])
        d.load_state_dict(req["d"])
        vgg = None
        if req.get("vgg") is not None:
            vgg = kit_vgg()
            vgg.load_state_dict(req["vgg"])
        opt_g = torch.optim.SGD(g.parameters(), lr=req["lr"])
        opt_d = torch.optim.SGD(d.parameters(), lr=req["lr"])
        rec_g, rec_d = Recorder(opt_g, g.parameters()), Recorder(opt_d, d.parameters())
        arrivals = []

        def count_arrivals(module, inputs, out):  # backward passes reaching the generator's output
            if torch.is_tensor(out) and out.requires_grad:
                out.register_hook(lambda grad: arrivals.append(1))

        g.register_forward_hook(count_arrivals)
        kwargs = {"beta": req["beta"]}
        scalers = None
        if req.get("scalers"):
            scalers = {"g": RecordingScaler(), "d": RecordingScaler()}
            kwargs.update(amp=False, scaler_g=scalers["g"], scaler_d=scalers["d"])
        batches = [(lr.clone(), hr.clone()) for lr, hr in req["batches"]]
        losses = fn(g, d, vgg, batches, opt_g, opt_d, torch.device("cpu"), **kwargs)
        return {"grads_g": rec_g.grads, "grads_d": rec_d.grads, "arrivals": len(arrivals),
                "g": [p.detach().clone() for p in g.parameters()], "d": [p.detach().clone() for p in d.parameters()],
                "vgg_untouched": vgg is None or (all(p.grad is None for p in vgg.parameters())
                                                 and not any(p.requires_grad for p in vgg.parameters())),
                "losses": _plain(losses),
                "scaler_calls": {k: s.calls for k, s in scalers.items()} if scalers else None}


def _describe_error(e: BaseException) -> dict:
    """What went wrong, as plain data: the exception's type name and message (student text: the trusted side
    truncates and escapes it)."""
    if isinstance(e, Refused):
        return {"refused": e.args[0]}
    return {"raised": type(e).__name__[:100], "message": str(e)[:1000]}


def serve(folder: str, fd_in: int = 0, fd_out: int = 1) -> None:
    """Answer requests until stdin closes. Student code's own stdout/stderr go to /dev/null; answers go to a
    private duplicate of ``fd_out``. Every answer carries the request's number."""
    import warnings

    out = os.dup(fd_out)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
    server = Server(folder)
    write_all(out, encode({"ready": True}))
    while True:
        try:
            (n,) = struct.unpack(FRAME_LENGTH, read_exact(fd_in, struct.calcsize(FRAME_LENGTH)))
            if n > MAX_REQUEST:
                break
            req = decode(read_exact(fd_in, n))
        except EOFError:
            break
        try:
            answer = {"ok": server.handle(req)}
        except BaseException as e:  # student code raised (or exited): say so, keep serving
            answer = {"error": _describe_error(e)}
        answer["n"] = req.get("n")
        try:
            data = encode(answer)
        except BaseException as e:
            data = encode({"n": req.get("n"), "error": {"raised": type(e).__name__[:100], "message": "unsendable"}})
        write_all(out, data)
    os._exit(0)


if __name__ == "__main__":
    serve(sys.argv[1])
