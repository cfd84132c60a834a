"""Analysis: reading run directories and plotting them (matplotlib is the optional ``plot`` extra)."""
from .runs import load_metrics, load_results, summarize

__all__ = ["load_metrics", "load_results", "summarize"]
