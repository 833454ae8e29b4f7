from __future__ import annotations

import sqlalchemy as sa
from flask import render_template

from app.extensions import db
from app.models import Account, Membership, Role, User
from app.ops import bp
from app.tenancy import unscoped


@bp.get("/")
def index() -> str:
    with unscoped():
        accounts = db.session.scalars(sa.select(Account).order_by(Account.name)).all()
        owners = dict(
            db.session.execute(
                sa.select(Membership.account_id, User.email)
                .join(User, User.id == Membership.user_id)
                .where(Membership.role == Role.OWNER)
            ).all()
        )
    return render_template("ops/index.html", accounts=accounts, owners=owners)
