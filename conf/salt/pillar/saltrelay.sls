# Pillar example for the saltrelay state tree (conf/salt/states/saltrelay;
# installed in /usr/share/saltrelay/salt/states). It gives one host both
# roles so that every state shows (tests/test_salt.py renders it); in a real
# pillar give `up` to the MoM host and `down` to each DC's relay host, e.g.
#   base:
#     'mom1.example.net':  [saltrelay.mom]    # saltrelay: {up: {...}}
#     'relay-dc1*':        [saltrelay.dc1]    # saltrelay: {down: {dc1: {...}}}
# Values are written to the daemons' files as they are (the daemon's own
# --check-config must accept the file: it refuses the CHANGE-ME placeholder
# passwords below); saltrelay-up(8) and
# saltrelay-down(8) name every key. The files hold the Redis password: keep
# this pillar to the hosts that need it.
saltrelay:
  # install: True                       # False: the package comes another way
  # package: saltrelay                  # the Debian package's name
  # package_source: salt://saltrelay/saltrelay_0.1.0_amd64.deb   # install this .deb
  # bindir: /usr/bin                    # saltrelay-up/-down, for --check-config
  # conf_dir: /etc/saltrelay
  # user: root                          # owner and group of conf_dir and the files
  # group: saltrelay
  # services: True                      # False: lay the files, leave the units alone

  # On the MoM host: saltrelay-up, and the runner config in master.d.
  up:
    cluster: prod
    redis: redis://:CHANGE-ME@redis-primary.example.net:6379/0
    master_publish: tcp://127.0.0.1:4505
    master_ret: tcp://127.0.0.1:4506
    metrics_bind: 127.0.0.1:9105
  # mom:
  #   conf_file: /etc/salt/master.d/saltrelay.conf
  #   runner_dir: /usr/share/saltrelay/salt/runners

  # On a DC's relay host: one saltrelay-down per DC it serves (the unit
  # saltrelay-down@DC reads down-DC.yaml; datacenter and state_dir
  # /var/lib/saltrelay/DC are filled in).
  down:
    dc1:
      cluster: prod
      redis: redis://:CHANGE-ME@127.0.0.1:6379/0
      redis_primary: redis://:CHANGE-ME@redis-primary.example.net:6379/0
      publish_bind: tcp://0.0.0.0:4505
      ret_bind: tcp://0.0.0.0:4506
