"""Money is integer cents; this module only formats it for people."""


def format_cents(cents: int) -> str:
    """Format cents as US dollars with thousands separators: ``123456`` -> ``"$1,234.56"``.

    Negative amounts get a leading minus sign (``"-$5.00"``); billing never produces them, but a
    formatter that silently lost the sign would hide a bug.
    """
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"
