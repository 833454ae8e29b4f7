"""Each issued invoice's PDF (WeasyPrint, in the worker) and its email."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import render_template

from app.billing.money import format_cents
from app.extensions import db
from app.mail.operations import queue_email
from app.models import Account, Invoice, Membership, Role, User, utcnow
from app.pdf import files_root, render_pdf, store_file
from app.tenancy import tenant_context, unscoped


def invoice_pdf_html(invoice: Invoice, account: Account) -> str:
    return render_template("pdf/invoice.html", invoice=invoice, account=account)


def ensure_invoice_pdf(invoice: Invoice, account: Account) -> Path:
    """The invoice's PDF file, rendered and stored first if it is missing (flushes)."""
    if invoice.pdf_path is None or not (files_root() / invoice.pdf_path).exists():
        relative = f"invoices/{account.id}/{invoice.number}.pdf"
        store_file(relative, render_pdf(invoice_pdf_html(invoice, account)))
        invoice.pdf_path = relative
        db.session.flush()
    return files_root() / invoice.pdf_path


def deliver_invoices(invoice_ids: list[int]) -> list[str]:
    """Job: render and email each invoice (see `deliver_invoice`)."""
    return [deliver_invoice(invoice_id) for invoice_id in invoice_ids]


def deliver_invoice(invoice_id: int) -> str:
    """Render the invoice PDF if it is missing, then email the owners once. Safe to rerun."""
    with unscoped():
        account_id = db.session.scalar(
            sa.select(Invoice.account_id).where(Invoice.id == invoice_id)
        )
    if account_id is None:
        return "no such invoice"
    with tenant_context(account_id):
        invoice = db.session.get_one(Invoice, invoice_id)
        account = db.session.get_one(Account, account_id)
        ensure_invoice_pdf(invoice, account)
        if invoice.emailed_at is None:
            for address in _billing_addresses(account):
                queue_email(
                    address,
                    "invoice",
                    account_id=account.id,
                    invoice=invoice,
                    account=account,
                    total=format_cents(invoice.total_cents),
                )
            invoice.emailed_at = utcnow()
        db.session.commit()
    return invoice.number


def _billing_addresses(account: Account) -> list[str]:
    owners = db.session.scalars(
        sa.select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.role == Role.OWNER)
    ).all()
    return sorted({account.billing_email, *owners})
