"""One module per resource family. Each holds a mixin of handlers that get the store and
never parse HTTP; dependencies run one way (refunds -> charges -> tokens/cards)."""
