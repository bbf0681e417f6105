"""Verdicts by recomputation: what a student's network must compute, computed here, in the trusted process, with
the assignment's reference architecture and the student's own weights.

The student side is asked to build a network, take weights and run forward; its answers are never taken at their
word. The same weights are loaded into the reference architecture (the instructor's solution, rebuilt in memory by
:mod:`course.reference` from ``source/``; it never reaches the student side), which runs here on inputs drawn at
check time. The student's network *computes the assignment's network* when, for some one-to-one mapping of its
``state_dict`` onto the reference's (same shapes), both give the same outputs. Layer names and the order layers are
registered in are the student's choice, so the mappings tried are: by name, by position in the ``state_dict``, by
position among tensors of the same shape, and by the order in which forward first calls the layers holding them
(:func:`candidate_mappings`). Trying several cannot help a wrong network: whichever mapping is used, the outputs it
is compared with were computed here.

What the grader then reports from a network (the test table, the Set5 pictures) is computed by the reference
loaded with the student's weights (:attr:`Recomputed.reference`), never by the student's code: a network that
looks its answers up in files, or embeds them (extra tensors map onto nothing), gets nothing from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .student_client import CheckFailed, Message

MAX_TENSORS = 10_000  # a state_dict with more tensors than this is not one of the assignment's networks


def reference_models():
    """The reference ``models`` module (:func:`course.reference.load_reference`, built once per process)."""
    from course.reference import load_reference

    return load_reference()[0]


def reference_network(cls: str, args=(), kwargs=None, what=None) -> torch.nn.Module:
    """The reference ``cls(*args, **kwargs)`` in eval mode; :class:`CheckFailed` when the arguments (e.g. a
    checkpoint's ``model_kwargs``) are not the assignment's."""
    try:
        return getattr(reference_models(), cls)(*args, **(kwargs or {})).eval()
    except (TypeError, ValueError):
        raise CheckFailed("{what}: its arguments {kwargs} are not those of the assignment's {cls}",
                          what=what or cls, kwargs=sorted(kwargs or {}), cls=cls) from None


def _signature(state: dict, key: str) -> tuple:
    t = state[key]
    return tuple(t.shape), t.is_floating_point()


def _layer(key: str) -> str:
    return key.rpartition(".")[0]


def candidate_mappings(ref_state: dict, stu_state: dict, ref_order=None, stu_order=None) -> list[dict]:
    """One-to-one mappings ``{reference key: student key}`` between two state_dicts whose tensors agree in shape
    (and in being floating point), most natural first: by name, by position, by position among tensors of the same
    shape, by the call order of the layers holding them (``*_order``: layer paths, first call first). Empty when
    the two do not hold the same number of tensors of each shape."""
    ref_keys, stu_keys = list(ref_state), list(stu_state)
    if len(ref_keys) != len(stu_keys):
        return []
    found: list[dict] = []

    def add(pairs) -> None:
        mapping = dict(pairs)
        if (len(mapping) == len(ref_keys) and len(set(mapping.values())) == len(mapping)
                and all(_signature(ref_state, r) == _signature(stu_state, s) for r, s in mapping.items())
                and mapping not in found):
            found.append(mapping)

    if set(ref_keys) == set(stu_keys):
        add((k, k) for k in ref_keys)
    add(zip(ref_keys, stu_keys))
    same_shape: dict = {}
    for k in stu_keys:
        same_shape.setdefault(_signature(stu_state, k), []).append(k)
    add((k, same_shape[_signature(ref_state, k)].pop(0)) for k in ref_keys
        if same_shape.get(_signature(ref_state, k)))
    if ref_order and stu_order:
        def by_call(keys, order):
            layers: dict = {}
            for k in keys:
                layers.setdefault(_layer(k), []).append(k)
            if set(layers) - set(order):  # a layer holding weights that forward never calls
                return None
            return [k for path in order for k in layers.get(path, [])]

        ref_called, stu_called = by_call(ref_keys, ref_order), by_call(stu_keys, stu_order)
        if ref_called and stu_called:
            add(zip(ref_called, stu_called))
    return found


def drawn_weights(state: dict, generator: torch.Generator) -> dict:
    """Fresh values for every floating-point tensor of ``state`` (same keys and shapes): weight matrices
    ~ N(0, 1/fan_in), everything else (biases, slopes, batch-norm scales and statistics) uniform in [0.5, 1.5], so
    that variances stay positive; integer tensors (batch counters) are kept."""
    out = {}
    for key, t in state.items():
        if not t.is_floating_point():
            out[key] = t.clone()
        elif t.dim() >= 2:
            out[key] = torch.randn(t.shape, generator=generator) / math.sqrt(max(1, t[0].numel()))
        else:
            out[key] = torch.rand(t.shape, generator=generator) + 0.5
    return out


def agree(got, want: torch.Tensor) -> bool:
    """``got`` is a finite float tensor equal to ``want`` up to float32 rounding of a different operation order."""
    if not (torch.is_tensor(got) and got.is_floating_point() and tuple(got.shape) == tuple(want.shape)):
        return False
    got = got.detach().float()
    return bool(torch.isfinite(got).all()) and float((got - want).abs().max()) <= 1e-4 * max(1.0, float(
        want.abs().max()))


def call_order(net: torch.nn.Module, x: torch.Tensor) -> list[str]:
    """Paths of the layers of ``net`` holding state_dict tensors, in the order forward first calls them."""
    order, handles = [], []
    for path, m in net.named_modules():
        if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            handles.append(m.register_forward_pre_hook(
                lambda mod, i, path=path: order.append(path) if path not in order else None))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return order


@dataclass
class Recomputed:
    """The reference architecture holding the student's weights (eval mode), and what it was checked with."""

    reference: torch.nn.Module
    weights: dict   # student key -> tensor: the weights both sides hold
    mapping: dict   # reference key -> student key


def student_state(remote, what) -> dict:
    """The student network's ``state_dict`` as plain tensors (refused when it is anything else)."""
    state = remote.state_dict()
    if not (isinstance(state, dict) and 0 < len(state) <= MAX_TENSORS
            and all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items())):
        raise CheckFailed("{what}: state_dict() did not return tensors", what=what)
    return state


def recompute(remote, cls: str, inputs: list, *, args=(), kwargs=None, weights=None, generator=None,
              what=None) -> Recomputed:
    """Check that the student's network ``remote`` (a ``checks.common.Remote``) computes the reference ``cls(*args,
    **kwargs)``: give it ``weights`` (a student-keyed state_dict; default: drawn here with ``generator`` and sent to
    it), run it on ``inputs`` (``(N, C, H, W)`` float32 tensors drawn by the caller) in eval mode, and compare with
    the reference holding the same weights, run here. Returns the loaded reference; raises :class:`CheckFailed`
    with one line that says so otherwise."""
    what = what or cls
    reference = reference_network(cls, args, kwargs, what=what)
    state = student_state(remote, what)
    if weights is None:
        weights = drawn_weights(state, generator or torch.Generator())
        remote.set(weights)
    elif set(weights) != set(state) or any(tuple(weights[k].shape) != tuple(state[k].shape) for k in state):
        raise CheckFailed("{what}: the network built from these arguments does not hold these weights", what=what)
    ref_state = reference.state_dict()
    mappings = candidate_mappings(ref_state, weights)
    if not mappings and len(ref_state) != len(weights):
        raise CheckFailed("{what}'s state_dict holds {got} tensors, the assignment's {cls} {want}: no more, no fewer "
                          "layers or buffers", what=what, got=len(weights), cls=cls, want=len(ref_state))
    answer = remote.forward_all(inputs, what=Message("{name}.forward", name=what), train=False, call_order=True)
    outs = answer.get("outs") if isinstance(answer, dict) else None
    order = answer.get("order") if isinstance(answer, dict) else None
    if isinstance(order, list) and all(isinstance(p, str) for p in order):
        mappings += [m for m in candidate_mappings(ref_state, weights, call_order(reference, inputs[0]), order)
                     if m not in mappings]
    if not isinstance(outs, list) or len(outs) != len(inputs):
        raise CheckFailed("{what}.forward did not answer", what=what)
    for mapping in mappings:
        reference.load_state_dict({r: weights[s] for r, s in mapping.items()})
        reference.eval()
        with torch.no_grad():
            if all(agree(out, reference(x)) for out, x in zip(outs, inputs)):
                return Recomputed(reference, weights, mapping)
    raise CheckFailed("{what} does not compute what the assignment's {cls} computes: the assignment's architecture "
                      "holding the same weights gives other outputs on fresh inputs", what=what, cls=cls)
