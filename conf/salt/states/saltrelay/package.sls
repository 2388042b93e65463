# saltrelay.package -- the Debian package (binaries, units, the Salt runner).
{%- from "saltrelay/map.jinja" import saltrelay with context %}
{%- if saltrelay.install %}
saltrelay-package:
  pkg.installed:
    - name: {{ saltrelay.package }}
{%- if saltrelay.package_source %}
    - sources:
      - {{ saltrelay.package }}: {{ saltrelay.package_source }}
{%- endif %}
    - require_in:
      - file: saltrelay-conf-dir
{%- endif %}
