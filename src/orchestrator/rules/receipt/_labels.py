"""What a receipt line is labelled as: total, subtotal, tax, cash tendered, change, rounding, item count, ...

Labels are matched on a *squashed* form of the line (upper case, OCR look-alike digits inside words folded
back to letters, everything but letters and digits removed), so ``T0TAL:``, ``Total :``, ``TOTAL`` and the
space-less ``TOTALDUE`` of some OCR output all look the same. The vocabulary covers English receipts and the
commonest Malay, French, German, Italian and Spanish words. Rules are tried in order and the first one wins,
which is how ``TOTAL QTY`` is a count, ``TOTAL GST`` a tax and ``TOTAL INCL. GST`` a total.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Label(StrEnum):
    """The role of a labelled line on a receipt."""

    TOTAL_FINAL = "total_final"  # what is finally due: grand total, amount due, balance due, nett, rounded total
    TOTAL = "total"  # a total: TOTAL, Total incl. GST, TOTAL SALES
    AMOUNT = "amount"  # a bare "Amount": a total only when nothing better is printed
    SUBTOTAL = "subtotal"
    TAX = "tax"
    TAX_INCLUDED = "tax_included"  # "Incl. of VAT 22.82": tax already inside the prices and the total
    SERVICE = "service"  # service charge, tip, gratuity: added between subtotal and total
    ROUNDING = "rounding"
    DISCOUNT = "discount"
    TENDERED = "tendered"  # cash given, card charged, paid
    CHANGE = "change"
    COUNT = "count"  # item count, total qty
    TAX_SUMMARY = "tax_summary"  # heading of a GST/VAT breakdown table, whose TOTAL is not the receipt's
    COLUMNS = "columns"  # an item table header such as "QTY  DESCRIPTION  AMOUNT"


MONEY_LABELS = frozenset(
    {
        Label.TOTAL_FINAL,
        Label.TOTAL,
        Label.AMOUNT,
        Label.SUBTOTAL,
        Label.TAX,
        Label.TAX_INCLUDED,
        Label.SERVICE,
        Label.ROUNDING,
        Label.DISCOUNT,
        Label.TENDERED,
        Label.CHANGE,
    }
)
"""Labels whose line (or the next value line) carries an amount."""

SUMMARY_LABELS = MONEY_LABELS - {Label.DISCOUNT} | {Label.COUNT, Label.TAX_SUMMARY}
"""Labels that end the item list."""

TOTAL_TIER = {Label.TOTAL_FINAL: 3, Label.TOTAL: 2, Label.AMOUNT: 1}

# TOTAL and its OCR and abbreviated forms: T0TAL, TOTAI, TOTL, TTL, LOTAL / IOTAL for a misread T, and TOTSL /
# TOTEL for a misread A (a thin-stroke A read as S or E; no English receipt word has that shape).
_T = r"(?:T[O0Q]T[A4SE]?[LI1]|TT[A4]?L|[IL1]OTAL)"
# The end of a label in a squashed line: the line ends, or its amount (or currency code) follows.
_END = r"(?:RM|MYR|USD|EUR|GBP|SGD)?(?:\d|$)"
_TAX_WORD = r"(?:TAX(?:ES)?|[G6]ST|VAT|HST|PST|QST|TVA|TVQ|TPS|IVA|MWST|SST|[SCIU]GST|UTGST|LIQTAX|BTW|USTR)"
_NOT_TAX_AMOUNT = (
    r"(?:INVOICE|ID|REG|NO(?![A-Z])|NUM|NR|SUMMARY|CODE|RATE|INFO|DETAIL|ANALY|TYPE|EXEMPT|RELIEF|ACT|"
    r"TABLE|EXCL|BREAKDOWN|RECEIPT|REFUND|FREE|NUMBER)"
)

_RULES: tuple[tuple[Label, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        (Label.TAX_SUMMARY, rf"^(?:{_TAX_WORD}|TAXES)(?:SUMMARY|ANALYSIS|ANALYSE|DETAILS?|INFO|BREAKDOWN|CODE)"),
        (Label.TAX_SUMMARY, r"^(?:SUMMARY|TAXCODE|VATRATE|TAXRATE|MWSTSATZ|STEUER)$"),
        (
            Label.COUNT,
            rf"^(?:{_T}|TOT)(?:NO|NUMBER)?(?:OF)?(?:QTY|QUANTITY|ITEMS?|PCS|PIECES|UNITS|COUNT|ARTICLES)",
        ),
        (Label.COUNT, r"^(?:MAIN)?(?:ITEMS?|ARTICLES?)(?:COUNT|SOLD|PURCHASED)"),
        (Label.COUNT, r"^(?:NO|NUMBER)(?:OF)?(?:ITEMS?|QTY|PCS)|^(?:ITEMS?|QTYS?|PCS)\d|^\d+ITEMS?$"),
        (
            Label.CHANGE,
            r"^(?:CHANGE|CHG|CHNG|BALANCERETURN|KEMBALI|BAKI|RENDU|MONNAIE|RESTO|RUCKGELD|WECHSELGELD|CAMBIO|"
            r"WISSELGELD|VUELTO)",
        ),
        (Label.TOTAL_FINAL, rf"^(?:{_T}|TOT)(?:AMT|AMOUNT)?(?:(?:AFTER|ATTER|AFT)(?:ROUND|RND)|ROUNDED)"),
        (Label.ROUNDING, rf"^(?:{_T}|TOT)(?:ROUND|RND)"),
        (Label.TOTAL_FINAL, rf"^(?:ROUNDED|ROUNDING)(?:{_T}|AMOUNT|AMT)"),
        (Label.ROUNDING, r"^(?:CASH|TOTAL|BILL)?(?:ROUNDING|ROUNDED|ROUND|RNDG|RNDADJ|ADJ(?:USTMENT)?ROUND)"),
        (Label.DISCOUNT, rf"^(?:{_T})?(?:DISCOUNT|DISC|SAVINGS?|YOUSAVED|SAVED|MULTISAVE|PROMO|COUPON|VOUCHER)"),
        (Label.DISCOUNT, rf"^(?:DISCOUNT|SAVINGS?|COUPON)S?{_T}"),
        (Label.SUBTOTAL, r"^[A-Z]{0,12}?SUB(?:T[O0]T?[A4]?[LI1]|TTL|TL$)"),
        (
            Label.SUBTOTAL,
            r"^(?:SOUSTOTAL|ZWISCHENSUMME|SUBTOTALE|SUBTOTALEN|ITEMTOTAL|MERCHANDISE|GROSSAMOUNT|GROSSSALES)",
        ),
        (
            Label.SUBTOTAL,
            rf"^(?:{_T}|AMOUNT|AMT|SALES?)(?:SALES?|AMT|AMOUNT)?(?:EXCL|EXCLUDING|EXCLUSIVE|BEFORE|NETOFTAX|HT)",
        ),
        (Label.SUBTOTAL, rf"^(?:{_T}TVAEXCL|TAXABLE|NETSALES|NETTO(?!TAL))"),
        (Label.COUNT, rf"^(?:{_T}|AMOUNT|AMT)(?:PER)?(?:PERSON|PAX|GUEST|COMENSAL|HEAD|EACH|SPLIT)"),
        (Label.TOTAL_FINAL, rf"^(?:GRAND|NETT?|FINAL|INVOICE|BILL)(?:{_T})"),
        (Label.TOTAL_FINAL, rf"^(?:{_T}|TOT)(?:AMT|AMOUNT|SALES)?(?:DUE|PAYABLE|TOPAY|TOBEPAID)"),
        (Label.TOTAL_FINAL, r"^(?:AMOUNT|AMT|BALANCE|BAL|PAYMENT|AMOUNTTOTAL)(?:DUE|PAYABLE|TOPAY|TOBEPAID)"),
        (Label.TOTAL_FINAL, rf"^(?:BALANCE|BAL|NETT|NETTAMOUNT|NETPAYABLE|PAYABLE|AMOUNTPAYABLE|DUE){_END}"),
        (Label.TOTAL_FINAL, rf"^(?:{_T}TTC|MONTANTTTC|TOTALE|SUMME|ZUZAHLEN|GESAMT|JUMLAH|IMPORTE{_T})"),
        (Label.TENDERED, rf"^(?:{_T}|TOT)(?:PAID|TENDER|TENDERED|PAYMENT)|^(?:ACCEPTED|TENDERED|RECEIVED){_T}"),
        (Label.TAX, rf"^\d*(?:{_T}|ADD|PLUS|ADDED)?{_TAX_WORD}(?!{_NOT_TAX_AMOUNT})"),
        (
            Label.TAX,
            rf"^(?:SALES|STATE|LOCAL|CITY|COUNTY|FOOD|LIQ|BEV|MEALS?|PROV|PROVINCIAL|FEDERAL|LUXURY)\w{{0,12}}?(?:{_TAX_WORD}|TA$)",
        ),
        (Label.TAX_INCLUDED, rf"^(?:INCL|INCLUSIVE|INC|INCLUDES|INCLUDED|BILLINCLUSIVE)\w{{0,12}}?{_TAX_WORD}"),
        (Label.TAX, r"^(?:TAX\d|GST\d|VAT\d|VAT[A-Z]\d|TAX[A-Z]?\d)"),
        (Label.SERVICE, r"^\d*(?:SERVICE|SERV(?:CHRG|CHG|CHARGE)|SVC|SVCCHG|SRVCHG|GRATUITY|SERVIZIO)"),
        (Label.SERVICE, r"^(?:TIPS?|ADDTIP|TIPAMOUNT|TIPAMT)(?![A-Z])"),
        (Label.TOTAL, rf"^{_T}|^[A-Z]{{1,8}}?T[O0Q]T[A4][LI1]"),
        (Label.TOTAL, r"^(?:SUMA|MONTANT|BETRAG|IMPORTE|JUMLAHBESAR|TOTAAL)"),
        (Label.TOTAL, r"^(?:AMOUNT|AMT)(?:INCL|INCLUSIVE|INC)"),
        (Label.AMOUNT, rf"^(?:AMOUNT|AMT|NETAMOUNT|NETAMT|(?:FUEL|GAS|PUMP)?(?:SALE|PURCHASE)){_END}"),
        (
            Label.TENDERED,
            r"^(?:CASH(?!IER|SALE|BILL|REG)|TENDER(?:ED)?|PAID|PAYMENT|RECEIVED|AMOUNTRECEIVED|AMOUNTTENDERED|VISA|"
            r"MASTERCARD|MASTER|MC|AMEX|AMERICANEXPRESS|DEBIT|CREDIT|EFTPOS|DISCOVER|PDCASH|NETS|ECKARTE|KARTE|"
            r"ESPECES|CONTANTI?|EFECTIVO|ENTREGADO|TUNAI|GEGEBEN|CONTANT|CARD)"
            r"(?:CARD|TENDERED|TEND|RECEIVED|PAID|PAYMENT|AMOUNT|AMT)?"
            r"[A-Z]{0,3}(?:\d|$)",
        ),
    )
)

_CORE_COLUMN_WORDS = frozenset(
    "ITEM ITEMS QTY QUANTITY PRICE AMOUNT AMT DESC DESCRIPTION DESCRIPTIONS UPRICE SPRICE UP RSP PRODUCT ARTICLE "
    "COST EACH UNIT PRODUCTO DESCRIPCION UDS CANT CANTIDAD DESIGNATION QTE PRIX MENGE PREIS ARTIKEL BEZEICHNUNG "
    "DESCRIZIONE PREZZO QUANTITA".split()
)
_COLUMN_WORDS = frozenset(
    "ITEM ITEMS QTY QUANTITY PRICE AMOUNT AMT DESC DESCRIPTION DESCRIPTIONS RM UPRICE SPRICE UP RSP TAX CODE "
    "UNIT TOTAL PRODUCT ARTICLE DESCRIPTIONQTY PRICEAMOUNT PRICEAMOUNTVAT VAT COST EACH RATE AMTRM AMOUNTRM PRICERM "
    "TOTALRM PRODUCTO DESCRIPCION IMPORTE UDS CANT CANTIDAD DESIGNATION QTE PRIX MONTANT MENGE PREIS BETRAG ARTIKEL "
    "BEZEICHNUNG DESCRIZIONE PREZZO IMPORTO QUANTITA".split()
)

_WORD_FOLD = (
    (re.compile(r"(?<=[A-Z])0|0(?=[A-Z]{2})"), "O"),
    (re.compile(r"(?<=[A-Z])1(?=[A-Z])"), "I"),
    (re.compile(r"(?<=[A-Z])5(?=[A-Z])"), "S"),
)


_LEADING_TIME = re.compile(r"^\s*\d{1,2}[:.]\d{2}(?:[:.]\d{2})?\s*(?:[AaPp][Mm])?\s+(?=[A-Za-z])")


def squash(line: str) -> str:
    """Upper-case `line`, fold OCR digits inside words (T0TAL -> TOTAL) and keep only letters and digits."""
    text = line.upper()
    for pattern, letter in _WORD_FOLD:
        text = pattern.sub(letter, text)
    return re.sub(r"[^A-Z0-9]", "", text)


def classify(line: str) -> Label | None:
    """The label of a receipt line, or None for an ordinary line (item name, address, amount, ...)."""
    squashed = squash(line)
    if not squashed:
        return None
    if is_column_header(line):
        return Label.COLUMNS
    for label, pattern in _RULES:
        if pattern.search(squashed):
            return label
    # "RM CASH": a currency code printed in front of the label; "16 BALANCE DUE": OCR debris; "19:32:35 Total:"
    # a time printed on the same row (OCR reads the row as one line).
    untimed_line = _LEADING_TIME.sub("", line)
    untimed = squashed if untimed_line == line else squash(untimed_line)
    unprefixed = re.sub(r"^(?:(?:RM|MYR|USD|US|EUR|GBP|SGD)(?=[A-Z]{4})|\d{1,4}(?=[A-Z]{4}))", "", untimed)
    if unprefixed != squashed:
        return next((label for label, pattern in _RULES if pattern.search(unprefixed)), None)
    return None


def is_column_header(line: str) -> bool:
    """Whether a line is the header row of an item table (two or more column words and nothing else)."""
    words = [re.sub(r"[^A-Z]", "", w) for w in re.split(r"[\s/|]+", line.upper())]
    words = [w for w in words if w]
    core = sum(w in _CORE_COLUMN_WORDS for w in words)
    return core >= 2 and all(w in _COLUMN_WORDS for w in words)


def is_column_word(line: str) -> bool:
    """Whether a short line is a single column heading (QTY, PRICE, AMOUNT, DESCRIPTION, ...)."""
    word = re.sub(r"[^A-Z]", "", line.upper())
    return word in _COLUMN_WORDS and len(line) <= 20


def classify_lines(lines: list[str]) -> list[Label | None]:
    """Classify every line; a lone TOTAL, TAX or AMOUNT that continues a run of column headings is a heading."""
    labels = [classify(line) for line in lines]
    for index in range(1, len(lines)):
        previous = lines[index - 1]
        continues_header = labels[index - 1] is Label.COLUMNS or (
            re.sub(r"[^A-Z]", "", previous.upper()) in _CORE_COLUMN_WORDS and len(previous) <= 20
        )
        if continues_header and is_column_word(lines[index]):
            labels[index] = Label.COLUMNS
    return labels
