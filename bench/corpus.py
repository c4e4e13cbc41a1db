"""A deterministic synthetic seed corpus shaped like the shipped seeds.

Shape drawn from seeds/: 1 to 3 topics, a lead image on about 85% of stories, 0 to 6 related
items (each with outlet, date, quality and usually an image), an opaque `secured` token, and
3 to 7 KB a file. The same (count, seed) always writes the same bytes.

    python -m bench.corpus DIR [--count N] [--seed S]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOPICS = [
    "AI", "Computer Vision", "Robotics", "Climate", "Energy", "Space", "Health", "Biotech",
    "Privacy", "Security", "Policy", "Markets", "Startups", "Chips", "Cloud", "Mobile",
    "Gaming", "Science", "Education", "Transport", "Media", "Law", "Europe", "Asia",
]  # fmt: skip
OUTLETS = [
    ("Politico Europe", "politico.eu"), ("TechCrunch", "techcrunch.com"),
    ("The Next Web", "thenextweb.com"), ("Euronews", "euronews.com"), ("ZDNet", "zdnet.com"),
    ("Gizmodo", "gizmodo.com"), ("TechSpot", "techspot.com"), ("The Times", "thetimes.co.uk"),
    ("Government Technology", "govtech.com"), ("Hackster", "hackster.io"),
    ("Biometric Update", "biometricupdate.com"), ("The Financial Times", "ft.com"),
]  # fmt: skip
WORDS = (  # noqa: SIM905 - prose reads better than a 60-item literal
    "european parliament ban facial recognition surveillance police public spaces vote "
    "regulators data protection agencies privacy biometric identification technology rights "
    "lawmakers proposal restrictions generative models foundation chips edge compute vision "
    "schools moratorium cameras network software platform report analysis market growth "
    "researchers study results launch company announces deal funding security breach update"
).split()
EPOCH = datetime(2021, 1, 1, tzinfo=UTC)


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize()


def _quoted(text: str) -> str:
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(text, ensure_ascii=False)


def _image(rng: random.Random, domain: str, index: int) -> list[str]:
    width = rng.choice([600, 800, 1000, 1024, 1200, 1280])
    return [
        f'      - url: "https://{domain}/img/{index}/{rng.getrandbits(40):x}.jpg"',
        f"        width: {width}",
        f"        height: {width * rng.choice([9, 10, 12]) // 16}",
        "        isCached: true",
    ]


def seed_text(index: int, rng: random.Random) -> str:
    outlet, domain = rng.choice(OUTLETS)
    published = EPOCH + timedelta(minutes=rng.randrange(4 * 365 * 24 * 60))
    slug = f"{index}-{rng.getrandbits(48):x}"
    url = f"https://www.{domain}/article/{slug}/"
    lines = [
        "---",
        "category: news",
        f"title: {_quoted(_sentence(rng, 6, 14))}",
        f"excerpt: {_quoted(_sentence(rng, 50, 80) + '.')}",
        f"publishedDateTime: {published:%Y-%m-%dT%H:%M:%SZ}",
        f'originalUrl: "{url}"',
        f'webUrl: "{url}"',
        f'ampWebUrl: "{url}amp/"',
        f'cdnAmpWebUrl: "https://{domain.replace(".", "-")}.cdn.ampproject.org/c/s/{url[8:]}amp/"',
        "type: article",
        f"quality: {rng.randint(10, 180)}",
        f"heat: {rng.choice([-1, -1, rng.randint(1, 100)])}",
        "published: false",
        "",
        "provider:",
        f"  name: {_quoted(outlet)}",
        f"  domain: {domain}",
        "",
        "topics:",
        *(f"  - {topic}" for topic in rng.sample(TOPICS, rng.randint(1, 3))),
    ]
    if rng.random() < 0.85:
        lines += ["", "images:", *(line[4:] for line in _image(rng, domain, index))]
    related_count = rng.randint(0, 6)
    if related_count:
        lines += ["", "related:"]
    for position in range(related_count):
        other_outlet, other_domain = rng.choice(OUTLETS)
        when = published - timedelta(minutes=rng.randrange(3 * 24 * 60))
        lines += [
            f"  - title: {_quoted(_sentence(rng, 6, 14))}",
            f"    excerpt: {_quoted(_sentence(rng, 10, 22) + '.')}",
            f"    publishedDateTime: {when:%Y-%m-%dT%H:%M:%SZ}",
            f'    webUrl: "https://{other_domain}/news/{index}-{position}-{rng.getrandbits(32):x}"',
            "    type: article",
            "    provider:",
            f"      name: {_quoted(other_outlet)}",
            f"      domain: {other_domain}",
            f"    quality: {rng.randint(10, 180)}",
        ]
        if rng.random() < 0.85:
            lines += ["    images:", *_image(rng, other_domain, index)]
    token = base64.b64encode(rng.randbytes(rng.randint(1500, 1650))).decode()
    lines += ["", f'secured: "{token}"', "---", ""]
    return "\n".join(lines)


def generate(folder: Path, count: int, seed: int = 1) -> list[Path]:
    """Write `count` seed files into `folder` (created if needed); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        path = folder / f"{index:06d}.txt"
        path.write_text(seed_text(index, rng), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.folder, args.count, args.seed)
    print(f"wrote {args.count} seed files to {args.folder}")


if __name__ == "__main__":
    main()
