# saltrelay.config -- up.yaml (where the pillar has `up`) and down-DC.yaml
# for each DC of `down`, each key of the pillar written as is; defaults and
# units of every key: /etc/saltrelay/up.yaml and down.yaml of the package.
# A file is replaced only when the daemon's own --check-config accepts it.
# They hold the Redis password: readable by root and the saltrelay group.
{%- from "saltrelay/map.jinja" import saltrelay with context %}
{%- set files = [] %}
{%- if saltrelay.up %}
{%-   do files.append(('up', 'up', saltrelay.up)) %}
{%- endif %}
{%- for dc, keys in saltrelay.down | dictsort %}
{%-   set down = {'datacenter': dc, 'state_dir': '/var/lib/saltrelay/' ~ dc} %}
{%-   do down.update(keys) %}
{%-   do files.append(('down-' ~ dc, 'down', down)) %}
{%- endfor %}

saltrelay-conf-dir:
  file.directory:
    - name: {{ saltrelay.conf_dir }}
    - makedirs: True
    - user: {{ saltrelay.user }}
    - group: {{ saltrelay.group }}
    - mode: '0750'
{% for name, daemon, keys in files %}
saltrelay-{{ name }}-config:
  file.managed:
    - name: {{ saltrelay.conf_dir }}/{{ name }}.yaml
    - source: salt://saltrelay/files/relay.yaml.jinja
    - template: jinja
    - context:
        daemon: saltrelay-{{ daemon }}
        keys: {{ keys | json }}
    - user: {{ saltrelay.user }}
    - group: {{ saltrelay.group }}
    - mode: '0640'
    - check_cmd: {{ saltrelay.bindir }}/saltrelay-{{ daemon }} --check-config -c
    - require:
      - file: saltrelay-conf-dir
{% endfor %}
