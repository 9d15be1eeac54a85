"""Stripe's currency table, as the fake Stripe enforces it: codes, minor units, rounding,
minimum and maximum amounts.

Source: Stripe's "Supported currencies" page, docs.stripe.com/currencies (presentment
currencies; #zero-decimal; #three-decimal; #special-cases; #minimum-and-maximum-charge-amounts)
and support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds. The fake
keeps its own copy of the provider's rules, so a backend validating with its own table is
checked against Stripe's, not against itself.

- amounts are integers in the currency's minor unit: 2 decimals unless listed below;
- zero-decimal currencies (JPY, KRW, ...): the amount is in whole units;
- three-decimal currencies (BHD, JOD, KWD, OMR, TND): "these API calls require the
  least-significant (last) digit to be 0. Your integration must round amounts to the
  nearest ten" (PaymentIntents, charges, refunds);
- ISK stays two-decimal in the API but "all amounts in ISK are stated in multiples of 100";
- the minimum is Stripe's published one where the table lists one; for the other
  currencies Stripe converts to the account's settlement currency at the time of the charge
  (at least 0.50 USD), which a fake without exchange rates cannot do: it requires >= 1;
- the maximum: "The amount value supports up to eight digits" (99999999).
"""

SOURCE = "https://docs.stripe.com/currencies"

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Two-decimal in the API, whole units only (amount divisible by 100).
WHOLE_UNITS_ONLY = frozenset({"isk"})

# Every presentment currency of the table (lowercase, as the API takes them).
PRESENTMENT = frozenset(
    {"usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
     "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
     "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
     "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
     "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
     "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
     "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
     "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
     "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
     "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
     "vuv", "wst", "xaf", "xcd", "xcg", "xof", "xpf", "yer", "zar", "zmw"}
)  # fmt: skip

# "Minimum and maximum charge amounts", in the currency's minor unit.
MINIMUM_AMOUNTS = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}
MAXIMUM_AMOUNT = 99999999

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "aud": "$", "cad": "$",
           "hkd": "$", "sgd": "$", "nzd": "$", "mxn": "$", "brl": "R$", "thb": "฿"}  # fmt: skip


def decimals(currency):
    """Minor-unit digits of a currency as the API counts them (ISK: 2)."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def format_amount(amount, currency):
    """An amount as Stripe's messages show it: `$0.50 usd`, `¥50 jpy`, `1.000 kwd`."""
    places = decimals(currency)
    value = f"{amount / 10**places:,.{places}f}" if places else f"{amount:,}"
    return f"{SYMBOLS.get(currency, '')}{value} {currency}"


def amount_problem(amount, currency, charge=True):
    """(code, message) of what Stripe refuses in an amount of this currency, or None.

    `charge`: the minimum applies to charges and payments, not to refunds and captures."""
    if currency in THREE_DECIMAL and amount % 10:
        return (
            "invalid_charge_amount",
            f"Invalid amount: amounts in {currency.upper()} must end in 0 (the API takes three "
            "decimals, rounded to the nearest ten; see "
            "https://docs.stripe.com/currencies#three-decimal).",
        )
    if currency in WHOLE_UNITS_ONLY and amount % 100:
        return (
            "invalid_charge_amount",
            f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal "
            "and charged amounts must be evenly divisible by 100. See "
            "https://stripe.com/docs/currencies#special-cases for more information.",
        )
    minimum = MINIMUM_AMOUNTS.get(currency, 1)
    if charge and amount < minimum:
        return "amount_too_small", f"Amount must be at least {format_amount(minimum, currency)}"
    if amount > MAXIMUM_AMOUNT:
        return (
            "amount_too_large",
            f"Amount must be no more than {format_amount(MAXIMUM_AMOUNT, currency)}",
        )
    return None
