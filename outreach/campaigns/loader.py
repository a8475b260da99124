"""Load and validate campaign files: every problem names the file, the line, the key and why.

The YAML is read with ruamel.yaml's round-trip loader, which remembers where each key and item
starts, so a pydantic error location (``variants[1].percent``) maps back to a line of the file.
YAML 1.2: ``08:30`` is a string, not a sexagesimal number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, TemplateSyntaxError
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from outreach.campaigns.model import Campaign, Variant
from outreach.config import Offer, OffersFile
from outreach.errors import InputError

SUFFIXES = (".yaml", ".yml")
TEMPLATE_PARTS = {"email": ("txt", "subject", "html")}  # other channels: txt only
REQUIRED_LANGUAGE = "nl"  # the renderer's fallback: it must exist for every template


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.reason}"


class CampaignFileError(InputError):
    """One or more problems in campaign files; ``str()`` lists them one a line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class LoadedCampaign:
    campaign: Campaign
    path: Path


def _line_of(data: object, loc: Iterable) -> tuple[int, str]:
    """The (1-based) line where the deepest existing part of ``loc`` starts, and the readable key."""
    line = 1
    node = data
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            parts.append(f"[{item}]")
            if item < len(node) and hasattr(node, "lc"):
                line = node.lc.item(item)[0] + 1
                node = node[item]
                continue
            break
        if isinstance(node, dict) and item in node:
            parts.append(f".{item}" if parts else str(item))
            if hasattr(node, "lc"):
                line = node.lc.key(item)[0] + 1
            node = node[item]
            continue
        parts.append(f".{item}" if parts else str(item))
        break
    return line, "".join(parts) or "(top)"


def _read(path: Path) -> tuple[object | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(str(path), 1, "(file)", "file not found")]
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 1, "(file)", f"not UTF-8 text: {exc.reason}")]
    try:
        return YAML(typ="rt").load(text), []
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(str(path), line, "(yaml)", f"not valid YAML: {exc.problem or exc}")]


def parse_file(path: str | Path) -> tuple[Campaign | None, object, list[Problem]]:
    """Schema checks only: the campaign (or None), the raw data (for line lookups) and the problems."""
    path = Path(path)
    data, problems = _read(path)
    if problems:
        return None, data, problems
    if not isinstance(data, dict):
        return None, data, [Problem(str(path), 1, "(top)", "a campaign file is a mapping of keys")]
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            line, key = _line_of(data, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            found.append(Problem(str(path), line, key, message))
        return None, data, found
    if path.stem != campaign.name:
        line, key = _line_of(data, ["name"])
        problems.append(
            Problem(
                str(path), line, key, f"the file of campaign {campaign.name!r} must be {campaign.name}.yaml"
            )
        )
    return campaign, data, problems


def check_references(
    campaign: Campaign,
    data: object,
    path: Path,
    offers: OffersFile,
    templates_dir: Path,
    max_sms_segments: int = 2,
) -> list[Problem]:
    """Offers, channels, send times and templates that the campaign names must exist and fit."""
    problems: list[Problem] = []

    def problem(loc: list, reason: str) -> None:
        line, key = _line_of(data, loc)
        problems.append(Problem(str(path), line, key, reason))

    by_code = offers.by_code()
    known = [by_code[code] for code in campaign.offers if code in by_code]
    for index, code in enumerate(campaign.offers):
        if code not in by_code:
            problem(
                ["offers", index], f"offer {code!r} is not in the offers file ({', '.join(sorted(by_code))})"
            )
    used_channels: set[str] = set()
    for offer in known:
        if campaign.channels is not None:
            for index, channel in enumerate(campaign.channels):
                if channel not in offer.channels:
                    problem(
                        ["channels", index],
                        f"channel {channel} is not a channel of offer {offer.code} "
                        f"({', '.join(offer.channels)}): a campaign may only narrow an offer's channels",
                    )
        used_channels |= set(campaign.channels_for(offer.channels))
    quiet = offers.policy.quiet_hours
    for channel, at in campaign.send_times.items():
        if known and channel not in used_channels:
            problem(["send_times", channel], f"{channel} is not a channel this campaign can use")
        window = quiet.get(channel)
        if window and not (window.start <= at < window.end):
            problem(
                ["send_times", channel],
                f"{at:%H:%M} is outside the {channel} sending window "
                f"{window.start:%H:%M}-{window.end:%H:%M}: messages would wait a day",
            )
    env = Environment(loader=FileSystemLoader(str(templates_dir)))
    for v_index, variant in enumerate(campaign.variants):
        for channel, name in variant.templates.items():
            loc = ["variants", v_index, "templates", channel]
            if known and channel not in used_channels:
                problem(loc, f"{channel} is not a channel this campaign can use")
                continue
            parts = TEMPLATE_PARTS.get(channel, ("txt",))
            files = {
                part: templates_dir / f"{channel}/{name}.{REQUIRED_LANGUAGE}.{part}.j2" for part in parts
            }
            missing = [part for part, file in files.items() if not file.is_file()]
            if missing:
                shown = missing[0] if len(missing) == 1 else "{" + ",".join(missing) + "}"
                problem(
                    loc, f"template {templates_dir}/{channel}/{name}.{REQUIRED_LANGUAGE}.{shown}.j2 not found"
                )
                continue
            for file in files.values():
                try:
                    env.parse(file.read_text(encoding="utf-8"))
                except TemplateSyntaxError as exc:
                    problem(loc, f"template {file} line {exc.lineno}: {exc.message}")
                    break
            else:
                for found in _content_problems(
                    campaign, variant, channel, offers, templates_dir, max_sms_segments
                ):
                    problem(loc, found)
    return problems


def variant_offers(campaign: Campaign, offers: OffersFile) -> list[Offer]:
    """Each campaign offer as each variant with its own templates sends it: what the templates check
    renders (the variant's channels only; the others use the offer's own templates, checked anyway)."""
    by_code = offers.by_code()
    found = []
    for variant in campaign.variants:
        for code in campaign.offers:
            offer = by_code.get(code)
            channels = [c for c in variant.templates if offer is not None and c in offer.channels]
            if channels:
                templates = {**offer.templates, **{c: variant.templates[c] for c in channels}}
                found.append(offer.model_copy(update={"templates": templates, "channels": channels}))
    return found


def _content_problems(
    campaign: Campaign,
    variant: Variant,
    channel: str,
    offers: OffersFile,
    templates_dir: Path,
    max_sms_segments: int,
) -> list[str]:
    """What ``outreach templates check`` finds in a variant's template: rendering faults, a missing
    opt-out, an SMS over the segment limit (errors only; each with its file and line)."""
    from outreach.templates_check import check_templates

    one = campaign.model_copy(update={"variants": [variant]})
    pseudo = [o for o in variant_offers(one, offers) if o.template_for(channel) == variant.templates[channel]]
    if not pseudo:
        return []
    report = check_templates(
        templates_dir, offers.model_copy(update={"offers": []}), max_sms_segments, also=pseudo
    )
    name = f"{channel}/{variant.templates[channel]}."
    return sorted(
        {
            f"template {p.file}{f':{p.line}' if p.line else ''}: {p.message}"
            for p in report.errors
            if name in p.file
        }
    )


def load_file(path: str | Path, offers: OffersFile, templates_dir: str | Path) -> LoadedCampaign:
    """One valid campaign, or CampaignFileError listing every problem."""
    path = Path(path)
    campaign, data, problems = parse_file(path)
    if campaign is not None:
        problems += check_references(campaign, data, path, offers, Path(templates_dir))
    if problems or campaign is None:
        raise CampaignFileError(problems)
    return LoadedCampaign(campaign, path)


def campaign_files(directory: str | Path) -> list[Path]:
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def load_all(
    paths: Iterable[str | Path], offers: OffersFile, templates_dir: str | Path
) -> tuple[list[LoadedCampaign], list[Problem]]:
    """Every valid campaign among ``paths`` and the problems of the others (names unique across files)."""
    loaded: list[LoadedCampaign] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in paths:
        path = Path(path)
        try:
            item = load_file(path, offers, templates_dir)
        except CampaignFileError as exc:
            problems += exc.problems
            continue
        name = item.campaign.name
        if name in seen:
            problems.append(
                Problem(str(path), 1, "name", f"campaign {name!r} is also defined in {seen[name]}")
            )
            continue
        seen[name] = path
        loaded.append(item)
    return loaded, sorted(problems)


def load_directory(
    directory: str | Path, offers: OffersFile, templates_dir: str | Path
) -> tuple[list[LoadedCampaign], list[Problem]]:
    return load_all(campaign_files(directory), offers, templates_dir)
