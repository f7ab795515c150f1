"""HTTP routes, one mixin class per API area; ``gateway.service`` combines them
into the one nameko service (nameko finds entrypoints on base classes)."""
