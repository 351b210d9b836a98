"""Every node's INPUT_TYPES / RETURN_TYPES is valid for ComfyUI's classic node API."""
import pytest

import talking_head
from talking_head.nodes.registry import CATEGORY, DISPLAY_PREFIX, PREFIX

NODES = sorted(talking_head.NODE_CLASS_MAPPINGS.items())
SCALARS = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def test_pack_exports():
    assert talking_head.WEB_DIRECTORY == "./web/js"
    assert set(talking_head.NODE_CLASS_MAPPINGS) == set(talking_head.NODE_DISPLAY_NAME_MAPPINGS)
    assert len(NODES) >= 2


@pytest.mark.parametrize("node_id,cls", NODES)
def test_node_definition(node_id, cls):
    assert node_id.startswith(PREFIX + "_")
    assert talking_head.NODE_DISPLAY_NAME_MAPPINGS[node_id].startswith(DISPLAY_PREFIX)
    assert cls.CATEGORY.split("/")[0] == CATEGORY
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"} and "required" in spec
    names = []
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            names.append(name)
            assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, (name, entry)
            kind = entry[0]
            opts = entry[1] if len(entry) == 2 else {}
            assert isinstance(opts, dict)
            if isinstance(kind, (list, tuple)):   # a combo
                # ComfyUI checks "value not in list" only for lists: a tuple lets any value pass
                assert isinstance(kind, list), f"{node_id}.{name}: declare the choices as a list"
                assert len(kind) > 0 and all(isinstance(c, str) for c in kind)
                if "default" in opts:
                    assert opts["default"] in kind, (name, opts["default"])
            else:
                assert isinstance(kind, str) and kind == kind.upper(), (name, kind)
                if kind in ("INT", "FLOAT"):
                    assert opts["min"] <= opts["default"] <= opts["max"], name
    assert len(names) == len(set(names))
    assert isinstance(cls.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in cls.RETURN_TYPES)
    if hasattr(cls, "RETURN_NAMES"):
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
    fn = getattr(cls, cls.FUNCTION)
    assert callable(fn)
    import inspect

    params = inspect.signature(fn).parameters
    accepts_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for name in names:
        assert accepts_kwargs or name in params, f"{node_id}.{cls.FUNCTION} does not take input '{name}'"
    assert getattr(cls, "DESCRIPTION", ""), f"{node_id} has no DESCRIPTION"
    # every widget says what it does (the frontend shows it on hover); sockets of the
    # pack's own types and the obvious IMAGE/AUDIO inputs may go without
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind, opts = entry[0], (entry[1] if len(entry) == 2 else {})
            widget = isinstance(kind, list) or kind in SCALARS
            if widget and name not in ("seed", "dtype", "auto_download"):
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"
