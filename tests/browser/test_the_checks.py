"""The checks themselves find what they are there to find: a page with known faults fails each of them."""

from __future__ import annotations

BAD_PAGE = """<!doctype html><html lang="en" class="large-text"><head><title>Faults</title></head>
<body style="font-size: 14px; line-height: 1.1">
<main><h1>Faults</h1>
<p style="color: #aaa">Pale text</p>
<input type="text">
<label for="pin">PIN</label><input id="pin" name="pin"><input id="pin" name="pin" aria-label="Other PIN">
<button style="min-height: 0; height: 30px; padding: 0">Tiny</button>
</main></body></html>"""


def test_axe_and_the_elder_numbers_find_the_faults_of_a_bad_page(site):
    page = site.new_page()
    page.set_content(BAD_PAGE)
    found = "\n".join(site.problems(page, elder=True))
    # axe: a field without a label, text too pale
    assert "critical label" in found
    assert "serious color-contrast" in found
    # an id used twice, which a label points at
    assert "the id 'pin' is used more than once" in found
    # the elder numbers: small text, tight lines, pale text, a small button, and nothing large
    for fault in ("body text is 14px", "line height", "contrast 2.", "target button", "no text of 30 px"):
        assert fault in found, fault
