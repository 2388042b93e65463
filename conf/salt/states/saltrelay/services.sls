# saltrelay.services -- saltrelay-up and saltrelay-down@DC enabled and
# running, restarted when their config or the package changes. Set the
# pillar's `services: False` to lay the files only.
{%- from "saltrelay/map.jinja" import saltrelay with context %}
{%- set units = [] %}
{%- if saltrelay.up %}
{%-   do units.append(('up', 'saltrelay-up')) %}
{%- endif %}
{%- for dc in saltrelay.down | sort %}
{%-   do units.append(('down-' ~ dc, 'saltrelay-down@' ~ dc)) %}
{%- endfor %}
{%- if saltrelay.services %}
{%-   for name, unit in units %}
saltrelay-{{ name }}-service:
  service.running:
    - name: {{ unit }}
    - enable: True
    - watch:
      - file: saltrelay-{{ name }}-config
{%-     if saltrelay.install %}
      - pkg: saltrelay-package
{%-     endif %}
{%-   endfor %}
{%- endif %}
