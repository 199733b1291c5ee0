"""What a person must be able to read on a rendered notebook, in JupyterLab or in the exported
HTML alike (both use JupyterLab's `.jp-OutputArea-output` for each output): plots that are
images of real size, and tables that cut no value and fit the page."""

from __future__ import annotations

MIN_PLOT = (300, 150)  # pixels: a plot smaller than this did not really render

_IMAGES = """root => [...document.querySelectorAll(root + ' .jp-OutputArea-output img')]
  .map(img => { const r = img.getBoundingClientRect();
    return {complete: img.complete, natural: [img.naturalWidth, img.naturalHeight], shown: [r.width, r.height]}; })"""

_TABLES = """root => [...document.querySelectorAll(root + ' .jp-OutputArea-output table')]
  .map(t => { const area = t.closest('.jp-OutputArea-output').getBoundingClientRect();
    return {cells: [...t.querySelectorAll('td, th')].map(c => c.innerText.trim()),
            right: t.getBoundingClientRect().right, room: area.right}; })"""


def images(page, root: str) -> list[dict]:
    return page.evaluate(_IMAGES, root)


def tables(page, root: str) -> list[dict]:
    return page.evaluate(_TABLES, root)


def check_plots_and_tables(name: str, page, root: str, plots: int = 1) -> None:
    """At least `plots` images, each loaded and of real size; no table cell ending in `...`; no
    table wider than its output area (it would need scrolling sideways)."""
    shown = images(page, root)
    assert len(shown) >= plots, f"{name}: {len(shown)} plot(s) rendered, {plots} expected"
    for image in shown:
        assert image["complete"], f"{name}: a plot did not load: {image}"
        assert image["natural"][0] >= MIN_PLOT[0] and image["natural"][1] >= MIN_PLOT[1], f"{name}: {image}"
        assert image["shown"][0] >= MIN_PLOT[0] and image["shown"][1] >= MIN_PLOT[1], f"{name}: {image}"
    for table in tables(page, root):
        cut = [text for text in table["cells"] if text.endswith(("...", "…"))]
        assert not cut, f"{name}: table values cut short: {cut}"
        assert table["right"] <= table["room"] + 1, f"{name}: a table runs off the page: {table['cells'][:8]}"


def assert_in_tables(name: str, page, root: str, *values: str) -> None:
    """Each value stands in full in some table cell."""
    cells = [text for table in tables(page, root) for text in table["cells"]]
    for value in values:
        assert any(value in text for text in cells), f"{name}: {value!r} is not in any table in full"
