"""The package's import structure: no module imports another that (directly or through
others) imports it back. The layer order itself is the import-linter contract in
pyproject.toml, checked by ``make lint``."""

from __future__ import annotations

import grimp


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("adan")
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_layer_contract_is_declared() -> None:
    """The contract make lint enforces names every top-level package of adan."""
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    (contract,) = pyproject["tool"]["importlinter"]["contracts"]
    declared = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    graph = grimp.build_graph("adan")
    top = {m for m in graph.modules if m.count(".") == 1}
    assert top <= declared, f"not in the layer contract: {sorted(top - declared)}"
