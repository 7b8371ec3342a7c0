"""docvlm: grounded, validated JSON from PDFs, scans and receipt photos.

`import docvlm` stays light: torch and transformers are imported only inside the engine that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from docvlm.datamodel import DocumentResult

__all__ = ["__version__", "convert"]


def convert(path: str, **options: Any) -> DocumentResult:
    """Convert one document (PDF or image) into a validated `DocumentResult`.

    Args:
        path: a PDF or image file.
        **options: any field of `docvlm.options.ConvertOptions` (dpi, pages, engine, model, ...).

    Returns:
        The result model; a page that failed is a page with status "failure" and an error, not an exception.

    Raises:
        docvlm.errors.UsageError: when an option is invalid.
    """
    from docvlm.options import make_options
    from docvlm.pipeline import convert_document

    return convert_document(path, make_options(**options))
