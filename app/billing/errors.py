"""The domain error the billing rules raise."""


class BillingRuleError(ValueError):
    """A move the billing rules forbid, e.g. "upgrading" to a smaller plan.

    It subclasses ``ValueError`` so callers that only know the standard library still catch it;
    views map it to a re-rendered form with the message, which is written for the user.
    """
