#!/usr/bin/env python3
"""Write a synthetic customer CSV for import benchmarks.

    python benchmarks/gen_customers.py OUT.csv --rows N [--seed S]

OUT.csv may be ``-`` for standard output. The same seed always gives the same
file. Rows are written one at a time, so memory stays flat for any N.

Columns: email,name,company,owner,plan,mrr,seats,signed_on,language,tags,industry
Emails are unique (the row number is part of every address) and use only the
example.com / example.org / example.net domains. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import unicodedata
from datetime import date, timedelta
from typing import TextIO

HEADER = [
    "email",
    "name",
    "company",
    "owner",
    "plan",
    "mrr",
    "seats",
    "signed_on",
    "language",
    "tags",
    "industry",
]

# fmt: off
FIRST_EN = [
    "Lena", "Priya", "Tom", "Marcus", "Aiko", "Daniel", "Sam", "Chloé", "Hannah", "Oliver",
    "Ethan", "Sofia", "Nadia", "Emily", "Kevin", "Grace", "Liam", "Peter", "William", "Amara",
    "Chris", "Noah", "Zoe", "Mei", "Arjun", "Fatima", "Jonas", "Ingrid", "Kwame", "Yuki",
    "Omar", "Elena", "Mateo", "Chiara", "Björn", "Siobhan", "Dmitri", "Leila", "Ravi", "Ana",
]
FIRST_PT = [
    "João", "Rafael", "Joana", "Beatriz", "Ricardo", "Fernanda", "Gustavo", "Mateus", "Yasmin",
    "Isabela", "Júlia", "Helena", "Tiago", "Inês", "Luís", "Mariana", "Gonçalo", "Conceição",
]
LAST = [
    "Fischer", "Nair", "Becker", "Reed", "Tanaka", "Okafor", "Whitaker", "Martin", "Cho", "Grant",
    "Brooks", "Rossi", "Haddad", "Watson", "Lowe", "Kim", "O'Connor", "Novak", "Hayes", "Mensah",
    "Doyle", "Patel", "Laurent", "Lin", "Mehta", "Souza", "Ferreira", "Almeida", "Mendes", "Lima",
    "Pereira", "Carvalho", "Costa", "Rocha", "Santos", "Moraes", "Nguyen", "Schmidt", "Larsen",
    "Kowalski", "Dubois", "García", "Müller", "Andersson", "Oyelaran", "Takahashi", "da Silva",
]
COMPANY_WORDS = [
    "Brightpath", "Keelhaul", "Lotus", "Cedarline", "Harbor", "Tidewater", "Maple", "Saffron",
    "Northgate", "Bluestone", "Juniper", "Copperleaf", "Ironbridge", "Silverline", "Oakhurst",
    "Horizonte", "Vida Plena", "Sol Nascente", "Jade River", "Redwood", "Summit", "Fernhill",
]
COMPANY_KINDS = [
    "Analytics", "Logistics", "Clinics", "Freight", "Learning", "Engineering", "Legal",
    "Interiors", "Robotics", "Architects", "Dental Group", "Bakeries", "Fitness", "Solar",
    "Print Works", "Pharmacy", "Studio", "Textiles", "Foods", "Tecnologia", "Imóveis",
]
COMPANY_SUFFIXES = ["", "", "", " Ltd", " Inc.", " & Co.", ", LLC", " Lda.", " S.A."]
INDUSTRIES = [
    "Analytics", "Logistics", "Healthcare", "Accounting", "Retail", "Education", "Engineering",
    "Legal", "Interior design", "Agriculture", "Robotics", "Architecture", "Fashion",
    "Dental care", "Hospitality", "Software", "Food & beverage", "Fitness", "Real estate",
    "Brewing", "Tourism", "Manufacturing", "Construction", "Printing", "Energy", "Pharmacy",
]
TAGS = ["vip", "pilot", "annual", "monthly", "referral", "beta", "partner-sourced", "case-study"]
PLANS = [  # plan, weight, seats range, price per seat
    ("starter", 55, (1, 10), 25),
    ("growth", 35, (10, 60), 28),
    ("enterprise", 10, (50, 500), 22),
]
DOMAINS = ["example.com", "example.org", "example.net"]
# fmt: on
FIRST_DAY = date(2025, 1, 1)
DAYS = (date(2026, 9, 30) - FIRST_DAY).days + 1  # signed 2025-01-01 .. 2026-09-30


def ascii_slug(text: str) -> str:
    """'Conceição da Silva' -> 'conceicaodasilva' (letters and digits only)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def make_email(rng: random.Random, n: int, first: str, last: str) -> str:
    """Several address styles; every one contains ``n``, so addresses never repeat."""
    f, surname = ascii_slug(first), ascii_slug(last)
    style = rng.randrange(5)
    if style == 0:
        local = f"customer{n}"
    elif style == 1:
        local = f"{f}.{surname}{n}"
    elif style == 2:
        local = f"{f[0]}{surname}.{n}"
    elif style == 3:
        local = f"{f}_{n}"
    else:
        local = f"{surname}-{f}{n}"
    return f"{local}@{DOMAINS[n % len(DOMAINS)]}"


def make_row(rng: random.Random, n: int) -> list[str]:
    portuguese = rng.random() < 0.2
    first = rng.choice(FIRST_PT if portuguese else FIRST_EN)
    last = rng.choice(LAST)
    plan, _, (lo, hi), per_seat = rng.choices(PLANS, weights=[p[1] for p in PLANS])[0]
    seats = rng.randint(lo, hi)
    mrr = seats * per_seat * rng.uniform(0.85, 1.15)
    company = rng.choice(COMPANY_WORDS) + " " + rng.choice(COMPANY_KINDS)
    company += rng.choice(COMPANY_SUFFIXES)
    tags = ";".join(sorted(rng.sample(TAGS, rng.choice([0, 0, 1, 1, 1, 2, 3]))))
    signed_on = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    return [
        make_email(rng, n, first, last),
        f"{first} {last}",
        company,
        rng.choice(["ana", "bruno"]),
        plan,
        f"{mrr:.2f}",
        str(seats),
        signed_on.isoformat(),
        "pt" if portuguese else "en",
        tags,
        rng.choice(INDUSTRIES),
    ]


def write_customers(out: TextIO, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for n in range(1, rows + 1):
        writer.writerow(make_row(rng, n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a synthetic customer CSV (deterministic for a seed, flat memory)."
    )
    parser.add_argument("out", metavar="OUT.csv", help="file to write, or - for standard output")
    parser.add_argument("--rows", type=int, required=True, metavar="N", help="number of customers")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be 0 or more")
    if args.out == "-":
        sys.stdout.reconfigure(encoding="utf-8", newline="")  # type: ignore[union-attr]
        try:
            write_customers(sys.stdout, args.rows, args.seed)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into `head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            write_customers(fh, args.rows, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
