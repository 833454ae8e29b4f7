"""Small formatting helpers shared by invoice descriptions and change previews."""

from datetime import date

# Spelled out rather than taken from strftime("%b"), which follows the process locale.
_MONTH_ABBREVIATIONS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def format_day(day: date) -> str:
    """Format a date the way invoices show it: ``date(2026, 3, 1)`` -> ``"1 Mar 2026"``."""
    return f"{day.day} {_MONTH_ABBREVIATIONS[day.month - 1]} {day.year}"


def format_count(count: int, noun: str) -> str:
    """Count a noun with a plain English plural: ``"1 lead"``, ``"30 leads"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
