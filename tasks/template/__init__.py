"""The campaign's template: as declared (`spec`), checked against the API (`resolve`, `fit`),
filled per customer (`fill`, `languages`, `customers`).

```
tasks/template/
├── spec.py       TemplateSpec, HeaderSpec, ButtonSpec: the campaign's declaration (its form)
├── fit.py        header and buttons against the template's own, refused before the run
├── resolve.py    the template(s) per language from the API (Cloud) or the declaration (v1)
├── fill.py       Fill: each customer's template, header and buttons, made as they are sent
├── languages.py  which approved language each customer gets
└── customers.py  per-customer checks: language, header and button values
```
"""

from tasks.template.fill import Fill
from tasks.template.fit import TemplateRefusedError, check_shape
from tasks.template.resolve import check_template, resolve_template, resolve_template_task
from tasks.template.spec import ButtonSpec, HeaderSpec, TemplateSpec

__all__ = [
    "ButtonSpec",
    "Fill",
    "HeaderSpec",
    "TemplateRefusedError",
    "TemplateSpec",
    "check_shape",
    "check_template",
    "resolve_template",
    "resolve_template_task",
]
