#!/usr/bin/env python3
"""Side by side on the same corpus: the `detect` crate and Microsoft Presidio's pattern recognisers.

One run does both: it runs the crate's `accuracy` example (release build) with `--predictions`, runs
Presidio's AnalyzerEngine over the same documents with only its regex/checksum (and `phonenumbers`) recognisers
and a blank spaCy English pipeline saved to disk (no NER model, fully offline), then scores both with the same
rule as the Rust scorer: a labelled span is found when a prediction of the same kind overlaps it; a prediction
is right when it overlaps a labelled span of its kind. Only the personal-data kinds Presidio has a recogniser
for are compared; Presidio entity types without an equivalent kind here are ignored (not counted as errors).

    python3 -m venv .venv-corpus && .venv-corpus/bin/pip install faker presidio-analyzer
    .venv-corpus/bin/python crates/detect/corpus/compare_presidio.py crates/detect/corpus/corpus.jsonl
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer import predefined_recognizers as pr
from presidio_analyzer.nlp_engine import NlpEngineProvider

# Presidio entity type -> our kind.
ENTITY_TO_KIND = {
    "CREDIT_CARD": "credit_card",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IP_ADDRESS": "ip_address",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "ABA_ROUTING_NUMBER": "us_bank_routing",
    "US_BANK_NUMBER": "bank_account",
    "US_PASSPORT": "passport",
    "UK_PASSPORT": "passport",
    "IN_PASSPORT": "passport",
    "US_DRIVER_LICENSE": "driver_license",
    "UK_DRIVING_LICENCE": "driver_license",
    "DATE_TIME": "date_of_birth",
    "UK_NINO": "uk_nino",
    "UK_NHS": "uk_nhs",
    "CA_SIN": "ca_sin",
    "IN_PAN": "in_pan",
    "IN_AADHAAR": "aadhaar",
    "IN_GSTIN": "gstin",
}

RECOGNIZERS = [
    "CreditCardRecognizer", "EmailRecognizer", "PhoneRecognizer", "IpRecognizer", "IbanRecognizer", "UsSsnRecognizer",
    "AbaRoutingRecognizer", "UsBankRecognizer", "UsPassportRecognizer", "UkPassportRecognizer", "InPassportRecognizer",
    "UsLicenseRecognizer", "UkDrivingLicenceRecognizer", "DateRecognizer", "UkNinoRecognizer", "NhsRecognizer",
    "CaSinRecognizer", "InPanRecognizer", "InAadhaarRecognizer", "InGstinRecognizer",
]


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def byte_offsets(text):
    """Character index -> UTF-8 byte offset (Presidio reports character offsets)."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + len(ch.encode()))
    return offsets


def score(docs, predictions, kinds):
    counts = {k: {"gold": 0, "found": 0, "predicted": 0, "correct": 0} for k in kinds}
    for doc, preds in zip(docs, predictions):
        gold = [s for s in doc["spans"] if s[2] in kinds]
        preds = [p for p in preds if p[2] in kinds]
        overlap = lambda a, b: a[0] < b[1] and b[0] < a[1]
        for g in gold:
            c = counts[g[2]]
            c["gold"] += 1
            c["found"] += any(p[2] == g[2] and overlap(p, g) for p in preds)
        for p in preds:
            c = counts[p[2]]
            c["predicted"] += 1
            c["correct"] += any(g[2] == p[2] and overlap(p, g) for g in gold)
    return counts


def prf(c):
    p = c["correct"] / c["predicted"] if c["predicted"] else 1.0
    r = c["found"] / c["gold"] if c["gold"] else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def total(counts):
    t = {"gold": 0, "found": 0, "predicted": 0, "correct": 0}
    for c in counts.values():
        for k in t:
            t[k] += c[k]
    return t


def run_ours(corpus):
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        out = f.name
    cmd = ["cargo", "run", "-q", "--release", "-p", "detect", "--example", "accuracy", "--", corpus, "--predictions", out]
    report = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    docs_per_s = float(next(l for l in report.splitlines() if l.startswith("scan only:")).split(" docs/s")[0].split(", ")[-1])
    preds = [[[s, e, k] for s, e, k in json.loads(line)] for line in open(out, encoding="utf-8")]
    os.unlink(out)
    return preds, docs_per_s


def run_presidio(docs):
    # Presidio's email recogniser asks tldextract for the public suffix list, which would be downloaded; use the
    # snapshot tldextract ships so the run stays offline and deterministic.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    model_dir = os.path.join(tempfile.mkdtemp(), "blank_en")
    spacy.blank("en").to_disk(model_dir)
    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": model_dir}],
    }).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    for name in RECOGNIZERS:
        registry.add_recognizer(getattr(pr, name)(supported_language="en"))
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    results = []
    for doc in docs[:50]:  # warm-up
        analyzer.analyze(text=doc["text"], language="en")
    started = time.perf_counter()
    for doc in docs:
        results.append(analyzer.analyze(text=doc["text"], language="en"))
    elapsed = time.perf_counter() - started
    return results, len(docs) / elapsed


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "crates/detect/corpus/corpus.jsonl"
    docs = load(corpus)
    ours, ours_rate = run_ours(corpus)
    presidio_raw, presidio_rate = run_presidio(docs)
    kinds = sorted(set(ENTITY_TO_KIND.values()))

    def presidio_at(threshold):
        preds = []
        for doc, results in zip(docs, presidio_raw):
            off = byte_offsets(doc["text"])
            preds.append([[off[r.start], off[r.end], ENTITY_TO_KIND[r.entity_type]] for r in results
                          if r.entity_type in ENTITY_TO_KIND and r.score >= threshold])
        return preds

    ours_counts = score(docs, ours, kinds)
    p0 = score(docs, presidio_at(0.0), kinds)
    p5 = score(docs, presidio_at(0.5), kinds)
    print(f"corpus: {corpus}, {len(docs)} documents; kinds both cover: {len(kinds)}")
    print(f"speed (one thread, whole corpus): detect {ours_rate:,.0f} docs/s; Presidio {presidio_rate:,.0f} docs/s "
          f"({ours_rate / presidio_rate:,.0f}x)")
    print()
    print("| kind | gold | detect P | detect R | Presidio P (score>=0) | Presidio R (score>=0) | Presidio P (score>=0.5) | Presidio R (score>=0.5) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds + ["overall (micro)"]:
        o, a, b = (total(ours_counts), total(p0), total(p5)) if k.startswith("overall") else (ours_counts[k], p0[k], p5[k])
        (op, orr, of), (ap, ar, af), (bp, br, bf) = prf(o), prf(a), prf(b)
        print(f"| {k} | {o['gold']} | {op:.3f} | {orr:.3f} | {ap:.3f} | {ar:.3f} | {bp:.3f} | {br:.3f} |")
    o, a, b = total(ours_counts), total(p0), total(p5)
    print()
    print(f"overall F1 on these kinds: detect {prf(o)[2]:.3f}; Presidio {prf(a)[2]:.3f} (score>=0), {prf(b)[2]:.3f} (score>=0.5)")


if __name__ == "__main__":
    main()
