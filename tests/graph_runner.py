"""Run an API-format workflow through the node classes the way ComfyUI does.

Nodes run in dependency order; each output is cached under a signature made of the
node's class, its constant inputs, its IS_CHANGED value and its inputs' signatures, so a
second run re-executes only the nodes whose signature changed (ComfyUI's cache rule).
Core nodes used by the examples get small stand-ins here.
"""
from __future__ import annotations

import inspect
import json

import talking_head
from talking_head.nodes import host
from talking_head.nodes.convert import numpy_to_audio
from talking_head.pipelines.core import media


class LoadAudio:
    """Stand-in for ComfyUI's core LoadAudio (decodes without resampling, B=1)."""

    def load(self, audio):
        path = host.resolve_input(audio)
        info = media.probe(path)
        return (numpy_to_audio(media.read_audio(path, info.sample_rate, mono=False), info.sample_rate),)


CORE = {"LoadAudio": (LoadAudio, "load")}


class GraphRunner:
    def __init__(self):
        self.cache: dict = {}      # signature -> outputs
        self.executed: list = []   # node ids run by the last call
        self.ui: dict = {}

    def _signature(self, prompt, node_id, memo):
        if node_id in memo:
            return memo[node_id]
        node = prompt[node_id]
        parts = [node["class_type"]]
        consts = {}
        for name, value in sorted(node["inputs"].items()):
            if isinstance(value, list):
                parts.append((name, self._signature(prompt, value[0], memo), value[1]))
            else:
                consts[name] = value
                parts.append((name, json.dumps(value)))
        cls = talking_head.NODE_CLASS_MAPPINGS.get(node["class_type"])
        if cls is not None and hasattr(cls, "IS_CHANGED"):
            parts.append(("IS_CHANGED", str(cls.IS_CHANGED(**consts))))
        memo[node_id] = repr(parts)
        return memo[node_id]

    def run(self, prompt: dict) -> dict:
        """Execute ``prompt``; returns {node id: outputs tuple}."""
        memo: dict = {}
        results: dict = {}
        self.executed = []

        def visit(node_id):
            if node_id in results:
                return results[node_id]
            node = prompt[node_id]
            kwargs = {}
            for name, value in node["inputs"].items():
                kwargs[name] = visit(value[0])[value[1]] if isinstance(value, list) else value
            sig = self._signature(prompt, node_id, memo)
            if sig not in self.cache:
                if node["class_type"] in CORE:
                    cls, fn = CORE[node["class_type"]]
                else:
                    cls = talking_head.NODE_CLASS_MAPPINGS[node["class_type"]]
                    fn = cls.FUNCTION
                    check = getattr(cls, "VALIDATE_INPUTS", None)
                    if check is not None:  # the host passes the inputs its signature names
                        spec = inspect.getfullargspec(check)
                        ok = check(**{k: v for k, v in kwargs.items()
                                      if spec.varkw or k in spec.args})
                        assert ok is True, ok
                out = getattr(cls(), fn)(**kwargs)
                if isinstance(out, dict):
                    self.ui[node_id] = out.get("ui")
                    out = out["result"]
                self.cache[sig] = tuple(out)
                self.executed.append(node_id)
            results[node_id] = self.cache[sig]
            return results[node_id]

        for node_id in prompt:
            visit(node_id)
        return results


def load(path: str) -> dict:
    with open(path) as fh:
        prompt = json.load(fh)
    for node in prompt.values():
        node.pop("_meta", None)
    return prompt
