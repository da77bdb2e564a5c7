"""The HTML report of one or more run folders: metadata, metrics, figures, a gallery, comparisons.

Entry point: :func:`fmb.report.build.build_report`; CLI: ``fmb report`` (``fmb.report.command``).
"""
