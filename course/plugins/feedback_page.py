"""The HTML exporter of feedback pages: nbconvert's lab page, with nothing loaded from a network.

nbconvert's pages load MathJax, require.js and the widget manager from CDNs, so a student
reading feedback offline sees raw LaTeX. This exporter (GenerateFeedback's exporter class,
see nbgrader_config.py) uses the ``course_feedback`` template (course/templates/), which
drops those scripts, shows each graded cell's verdict and the totals, and inlines
plotly.js when the page holds a plotly figure. Formulas in markdown are converted to
MathML here, which browsers draw natively.
"""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from pathlib import Path

from jinja2 import pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from traitlets.config import Config
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "course_feedback"


def mathml(tex: str, display: str = "inline") -> str:
    try:
        return latex_to_mathml(tex, display=display)
    except Exception:  # a formula latex2mathml cannot read is shown as its source, not lost
        return f"<code>{IPythonRenderer.escape_html(None, tex)}</code>"


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with formulas as MathML instead of text for MathJax."""

    def block_math(self, body: str) -> str:
        return mathml(body, "block")

    def inline_math(self, body: str) -> str:
        return mathml(body)

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


# nbconvert's HTMLExporter parses the finished page with BeautifulSoup to give images an alt
# text and inputs and outputs a tab stop (a third of a page's time); on the course's own
# template the same is two substitutions.
_IMG_WITHOUT_ALT = re.compile(r"<img (?![^>]*\balt=)")
_FOCUSABLE = re.compile(r'<div class="(jp-Cell-inputWrapper|jp-OutputArea-output)([^"]*)"(?![^>]*tabindex)')


class _Remembered:
    """The last ``size`` results of a conversion, by key. The pages of one assignment share every
    cell but what the students wrote and what their code printed: highlighting the code and
    converting the markdown once per text, not once per page, saves half of a page's time."""

    def __init__(self, size: int = 4096):
        self.size, self.seen = size, OrderedDict()

    def get(self, key, convert):
        if key in self.seen:
            self.seen.move_to_end(key)
            return self.seen[key]
        value = self.seen[key] = convert()
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return value


class _Highlight:
    """nbconvert's highlighting of code cells, remembered (``_Remembered``)."""

    remembered = _Remembered()

    def __init__(self, highlight, lexer):
        self.highlight, self.lexer = highlight, lexer

    def __call__(self, source, language=None, metadata=None):
        key = (self.lexer, language, (metadata or {}).get("magics_language"), source)
        return self.remembered.get(key, lambda: self.highlight(source, language, metadata))


class FeedbackExporter(HTMLExporter):
    def __init__(self, config=None, **kwargs):
        # GenerateFeedback configures HTMLExporter (our parent class) with nbgrader's own
        # feedback template, which loads MathJax from a CDN: our own section wins over it.
        config = copy.deepcopy(config) if config is not None else Config()
        config.FeedbackExporter.template_name = TEMPLATE
        config.FeedbackExporter.extra_template_basedirs = [str(TEMPLATES)]
        config.FeedbackExporter.exclude_anchor_links = True
        super().__init__(config=config, **kwargs)

    def from_notebook_node(self, nb, resources=None, **kw):
        """HTMLExporter's conversion without its BeautifulSoup pass (see _FOCUSABLE)."""
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight = self.filters.get("highlight_code") or _Highlight(Highlight2HTML(pygments_lexer=lexer, parent=self),
                                                                     lexer)
        self.register_filter("highlight_code", highlight)
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        html = _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image" ', html)
        return _FOCUSABLE.sub(r'<div class="\1\2" tabindex="0"', html), resources

    _markdown = _Remembered()

    @pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        attachments = json.dumps(cell.get("attachments", {}), sort_keys=True)
        # The folder matters only to embedded images (each student's differs).
        return self._markdown.get((source, path if self.embed_images else "", attachments, self.embed_images),
                                  lambda: self._markdown2html(cell, path, source))

    def _markdown2html(self, cell, path: str, source: str) -> str:
        renderer = MathMLRenderer(
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=path,
            anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)
