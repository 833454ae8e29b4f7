"""Invoices: the worker renders each one's PDF with WeasyPrint and emails the owners;
the cron scheduler enqueues the period close."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.billing_portal.closing import close_periods, due_period_ids
from app.extensions import db
from app.models import AccountKind, Invoice, InvoiceKind, OutboxEmail, Plan, utcnow
from app.onboarding.operations import create_account
from app.pdf import files_root
from app.queue import get_queue
from app.seats.operations import PersonDetails, SeatDetails
from app.tenancy import unscoped
from tests.live import ROOT, empty_queues, live_app, process_env, run_worker_burst

pytestmark = [pytest.mark.live, pytest.mark.worker]


def test_the_worker_renders_each_invoice_pdf_and_emails_the_owners() -> None:
    with live_app("invoice_pdf") as app:
        empty_queues(app)
        with app.app_context(), app.test_request_context():
            plan = Plan(
                code="S100", name="Starter 100", allowance=100, cpl_cents=1000, price_cents=100_000
            )
            db.session.add(plan)
            db.session.flush()
            create_account(
                name="Harbor <Realty> & Co",
                kind=AccountKind.BROKERAGE,
                plan=plan,
                owner_email="owner@harbor.example",
                start=(utcnow() - timedelta(days=40)).date(),
                seats=(SeatDetails(PersonDetails("Pat Lee", "pat@harbor.example")),),
            )
            db.session.commit()
            close_periods(due_period_ids(utcnow()), utcnow(), trigger="test")
        run_worker_burst(app, ("reports", "mail"))
        with app.app_context(), unscoped():
            invoices = db.session.scalars(sa.select(Invoice).order_by(Invoice.id)).all()
            assert [invoice.kind for invoice in invoices] == [
                InvoiceKind.SIGNUP,
                InvoiceKind.CLOSING,
            ]
            for invoice in invoices:
                assert invoice.pdf_path is not None
                pdf = PdfReader(io.BytesIO((files_root() / invoice.pdf_path).read_bytes()))
                text = "\n".join(page.extract_text() for page in pdf.pages)
                assert invoice.number in text
                assert "Harbor <Realty> & Co" in text
                assert "Page 1 of 1" in text
                for line in invoice.lines:
                    assert line.description.split(",")[0] in text
            subjects = db.session.scalars(sa.select(OutboxEmail.subject)).all()
            for invoice in invoices:
                assert any(invoice.number in subject for subject in subjects)


def test_the_cron_scheduler_enqueues_the_period_close() -> None:
    with live_app("scheduler") as app:
        empty_queues(app)
        scheduler = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "scheduler"],
            env={**process_env(app), "CLOSE_INTERVAL_SECONDS": "30"},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            names: list[str] = []
            while time.monotonic() < deadline and "close_due_periods" not in names:
                time.sleep(0.2)
                with app.app_context():
                    names = [job.func_name.rsplit(".", 1)[-1] for job in get_queue("billing").jobs]
            assert "close_due_periods" in names
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            scheduler.wait(timeout=20)
