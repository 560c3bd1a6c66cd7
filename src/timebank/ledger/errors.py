"""Typed ledger errors with stable codes. The database raises the same codes (see the SQL functions)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from timebank.common.errors import ApplicationError, Conflict, NotFound, ValidationFailed


class LedgerError(ApplicationError):
    code = "ledger_error"


class InvalidAmount(LedgerError, ValidationFailed):
    code = "ledger_invalid_amount"
    default_message = _("Amounts are whole minutes, and never zero.")


class Unbalanced(LedgerError, ValidationFailed):
    code = "ledger_unbalanced"
    default_message = _("A transaction needs two or more postings that sum to zero.")


class AccountNotFound(LedgerError, NotFound):
    code = "ledger_account_not_found"
    default_message = _("No such account.")


class AccountClosed(LedgerError, Conflict):
    code = "ledger_account_closed"
    default_message = _("The account is closed.")


class AreaMismatch(LedgerError, ValidationFailed):
    code = "ledger_area_mismatch"
    default_message = _(
        "The accounts belong to different jurisdictions; moves between them go through clearing."
    )


class InsufficientFunds(LedgerError, Conflict):
    code = "ledger_insufficient_funds"
    default_message = _("Not enough minutes available in the account.")


class OverCap(LedgerError, Conflict):
    code = "ledger_over_cap"
    default_message = _("The deposit would take the account over its cap.")


class IdempotencyConflict(LedgerError, Conflict):
    code = "ledger_idempotency_conflict"
    default_message = _("This idempotency key was already used for a different request.")


class AlreadyReversed(LedgerError, Conflict):
    code = "ledger_already_reversed"
    default_message = _("This transaction has already been reversed.")


class ReversalOfReversal(LedgerError, Conflict):
    code = "ledger_reversal_of_reversal"
    default_message = _("A reversal cannot itself be reversed; post a new transaction instead.")


class LedgerBusy(LedgerError, Conflict):
    code = "ledger_busy"
    default_message = _("The accounts are busy with other postings; please try again.")


class PolicyNotFound(LedgerError, NotFound):
    code = "ledger_policy_not_found"
    default_message = _("No such policy version.")


class TransactionNotFound(LedgerError, NotFound):
    code = "ledger_transaction_not_found"
    default_message = _("No such transaction.")


class HoldNotPending(LedgerError, Conflict):
    code = "ledger_hold_not_pending"
    default_message = _("This hold was already captured or released.")


class HoldExceeded(LedgerError, ValidationFailed):
    code = "ledger_hold_exceeded"
    default_message = _("A capture cannot take more than the hold reserved.")


BY_CODE: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (
        InvalidAmount,
        Unbalanced,
        AccountNotFound,
        AccountClosed,
        AreaMismatch,
        InsufficientFunds,
        OverCap,
        IdempotencyConflict,
        AlreadyReversed,
        ReversalOfReversal,
        TransactionNotFound,
        HoldNotPending,
        HoldExceeded,
        LedgerBusy,
        PolicyNotFound,
    )
}
# Database constraint names and the errors they mean.
BY_CONSTRAINT: dict[str, type[LedgerError]] = {
    "ledger_account_no_overdraft": InsufficientFunds,
    "ledger_account_within_cap": OverCap,
    "ledger_transaction_reverses_id_key": AlreadyReversed,
    "ledger_posting_nonzero": InvalidAmount,
    "ledger_transaction_balanced": Unbalanced,
}


def error_for(code: str, detail: str = "", **extra: Any) -> LedgerError:
    cls = BY_CODE.get(code, LedgerError)
    return cls(extra={"detail": detail, **extra})
