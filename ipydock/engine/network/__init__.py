"""Container networking of the bundled engine.

Today only the two built-in modes exist, the ones ``run --network host|none`` gives; bridges,
IPAM, DNS and published ports come with a later issue::

    running containers (NetworkMode) ──> builtin.networks() ──> NetworkInfo "host" (driver host)
                                                           └──> NetworkInfo "none" (driver null)
    create / connect / disconnect     ──> NotSupported (what to use instead)
"""
