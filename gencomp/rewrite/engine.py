"""The rewrite driver: a registry of rules by phase, and the fixed-point loop that applies them."""

from __future__ import annotations

from collections import OrderedDict

PHASES = ("merge", "canonicalize", "stabilize", "specialize")
MODES = {"None": (), "fast_compile": ("merge",), "fast_run": PHASES}
MAX_PASSES = 8                  # per phase: rules shrink or stabilize the graph, this is a safety bound

_NODE_RULES: "OrderedDict[str, tuple]" = OrderedDict()     # name -> (phase, function)
_GRAPH_RULES: "OrderedDict[str, tuple]" = OrderedDict()


def register_node_rule(phase: str, name: str | None = None):
    """Decorator: `fn(node) -> list of replacement outputs | None`, run in `phase`."""
    def add(fn):
        _NODE_RULES[name or fn.__name__] = (phase, fn)
        return fn
    return add


def register_graph_rule(phase: str, name: str | None = None):
    """Decorator: `fn(fgraph) -> number of rewrites made (or None)`, run once per pass of `phase`
    before its node rules."""
    def add(fn):
        _GRAPH_RULES[name or fn.__name__] = (phase, fn)
        return fn
    return add


def registered(phase: str | None = None) -> list[str]:
    """Names of the registered rules (of one phase)."""
    names = [n for n, (p, _) in {**_GRAPH_RULES, **_NODE_RULES}.items() if phase in (None, p)]
    return names


def optimize(fgraph, mode: str, exclude=()) -> dict:
    """Run the phases of `mode` on `fgraph` in place; returns how often each rule fired."""
    fired: dict = {}
    for phase in MODES[mode]:
        graph_rules = [(n, f) for n, (p, f) in _GRAPH_RULES.items() if p == phase and n not in exclude]
        node_rules = [(n, f) for n, (p, f) in _NODE_RULES.items() if p == phase and n not in exclude]
        for _ in range(MAX_PASSES):
            for name, fn in graph_rules:
                count = fn(fgraph)
                if count:
                    fired[name] = fired.get(name, 0) + count
            if not _node_pass(fgraph, node_rules, fired):
                break
    return fired


def _node_pass(fgraph, node_rules, fired) -> bool:
    """One walk over the graph applying node rules; True if anything changed.

    What a rule builds is rewritten at once, bottom-up, so a long chain collapses in one pass.
    """
    if not node_rules:
        return False
    replacements = {}
    nodes = fgraph.toposort()
    existing = {id(v) for node in nodes for v in (*node.inputs, *node.outputs)}
    for node in nodes:
        node.inputs = [replacements.get(id(i), i) for i in node.inputs]
        for old, new in _apply(node, node_rules, fired, existing, depth=0):
            replacements[id(old)] = new
    fgraph.outputs = [replacements.get(id(o), o) for o in fgraph.outputs]
    return bool(replacements)


def _apply(node, node_rules, fired, existing, depth) -> list:
    """[(old output, replacement)] from the first rule that fires on `node` (nothing if none)."""
    for name, fn in node_rules:
        new = fn(node)
        if new is None:
            continue
        fired[name] = fired.get(name, 0) + 1
        pairs = []
        for old, var in zip(node.outputs, new):
            if var is old:
                continue
            if not _compatible(old.type, var.type):
                raise TypeError(f"rewrite {name} changed {old.type} into {var.type}")
            if depth < MAX_DEPTH:
                var = _settle(var, node_rules, fired, existing, depth + 1)
            pairs.append((old, var))
        return pairs
    return []


MAX_DEPTH = 16


def _settle(var, node_rules, fired, existing, depth):
    """`var` after rewriting, bottom-up, the nodes a rule just built (those not in `existing`)."""
    new_nodes, seen, stack = [], set(), [(var, False)]
    while stack:                            # post-order walk that stops at the existing graph
        v, done = stack.pop()
        if v.owner is None or id(v) in existing or id(v.owner) in seen and not done:
            continue
        if done:
            new_nodes.append(v.owner)
            continue
        seen.add(id(v.owner))
        stack.append((v, True))
        stack.extend((i, False) for i in v.owner.inputs)
    local = {}
    for node in dict.fromkeys(new_nodes):
        node.inputs = [local.get(id(i), i) for i in node.inputs]
        for before, after in _apply(node, node_rules, fired, existing, depth):
            local[id(before)] = after
        existing.update(id(o) for o in node.outputs)      # settled: later walks stop here
    result = local.get(id(var), var)
    existing.add(id(result))
    return result


def _compatible(old, new) -> bool:
    """Same dtype and rank; the replacement may know more dimensions to be broadcastable."""
    return (old.dtype == new.dtype and old.ndim == new.ndim
            and all(n or not o for o, n in zip(old.broadcastable, new.broadcastable)))
