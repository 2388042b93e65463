# saltrelay.mom -- on the MoM host (the pillar has `up`): the master config
# that loads the saltrelay runner (salt-run saltrelay.status / .job /
# .minions) and names up.yaml. salt-master reads it at its next start; this
# state does not restart the master that may be running it.
{%- from "saltrelay/map.jinja" import saltrelay with context %}
{%- if saltrelay.up %}
saltrelay-mom-runner-config:
  file.managed:
    - name: {{ saltrelay.mom.conf_file }}
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (saltrelay.mom): the saltrelay runner.
        runner_dirs:
          - {{ saltrelay.mom.runner_dir }}
        saltrelay_config: {{ saltrelay.conf_dir }}/up.yaml
{%- endif %}
