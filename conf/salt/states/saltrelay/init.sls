# saltrelay -- deploy saltrelay on a host from the pillar `saltrelay`
# (conf/salt/pillar/saltrelay.sls): the package, saltrelay-up's up.yaml and
# the MoM's runner config where `up` is set (the MoM host), one
# down-DC.yaml per entry of `down` (a DC's relay host), and their units.
include:
  - saltrelay.package
  - saltrelay.config
  - saltrelay.mom
  - saltrelay.services
