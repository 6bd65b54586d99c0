"""A fixed sample edition for ``tamtam check``, previews and the golden tests.

It is deliberately awkward: French typography (« », ’, accents), an ampersand and a
``<script>`` in a title, a long summary, an article with no image, author or categories,
so a template that forgets to escape or assumes a field is present fails the trial render
instead of the first real edition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import Article, Edition
from ..settings import ChannelSettings

_LONG = (
    "La campagne agricole s’annonce meilleure que prévu dans les régions de Ségou, Sikasso "
    "et Mopti, selon les premiers chiffres publiés par le ministère de l’Agriculture. Les "
    "producteurs de coton saluent des pluies régulières, mais s’inquiètent du prix des "
    "intrants et de l’état des pistes rurales, qui rendent l’acheminement des récoltes vers "
    "les marchés long et coûteux. « Nous avons semé à temps, il faut maintenant vendre au "
    "juste prix », résume un responsable de coopérative. "
) * 3


def sample_articles(base_url: str, now: datetime) -> tuple[Article, ...]:
    """The sample articles, published in the hours before ``now``."""
    site = base_url.rstrip("/")
    return (
        Article(
            source_id="exemple",
            guid=f"{site}/?p=101",
            url=f"{site}/2024/12/02/bamako-la-saison-des-pluies/",
            # As a careful French desk writes it: no-break spaces before « : » and inside « ».
            title="Bamako\u00a0: «\u00a0la saison des pluies a dépassé nos attentes\u00a0», selon l’Agence",
            published_at=now - timedelta(hours=2),
            author="Aminata Traoré",
            categories=("Société", "Environnement"),
            summary="Les pluviomètres de la capitale ont enregistré 20 % de précipitations de plus "
                    "que l’an dernier. Les maraîchers du fleuve s’en réjouissent.",
            content_html="<p>Les pluviomètres de la capitale ont enregistré <strong>20 %</strong> de plus.</p>",
            image_url=f"{site}/wp-content/uploads/2024/12/pluie.jpg",
        ),
        Article(
            source_id="exemple",
            guid=f"{site}/?p=102",
            url=f"{site}/2024/12/02/economie-coton-campagne/?utm_source=rss&utm_medium=flux",
            title="Coton & céréales : la campagne <script>alert(1)</script> s’annonce « record »",
            published_at=now - timedelta(hours=5),
            author="Moussa Keïta",
            categories=("Économie",),
            summary=_LONG.strip(),
            content_html="<p>La campagne agricole s’annonce meilleure que prévu.</p>",
            image_url=None,
        ),
        Article(
            source_id="exemple",
            guid=f"{site}/?p=103",
            url=f"{site}/2024/12/01/sport-les-aigles/",
            title="Football\u00a0: les Aigles qualifiés pour la CAN après un match à suspense\u202f!",
            published_at=now - timedelta(hours=26),
            author=None,
            categories=(),
            summary="",
            content_html="",
            image_url=None,
        ),
        Article(
            source_id="exemple",
            guid=f"{site}/?p=104",
            url=f"{site}/2024/12/01/culture-festival/",
            title="Culture : le festival sur le Niger revient à Ségou en février",
            published_at=now - timedelta(hours=30),
            author="Fatoumata Diallo",
            categories=("Culture",),
            summary="Musiciens, conteurs et artisans sont attendus sur les berges du fleuve pour "
                    "la nouvelle édition du festival.",
            content_html="<p>Musiciens, conteurs et artisans sont attendus.</p>",
            image_url=f"{site}/wp-content/uploads/2024/12/festival.jpg",
        ),
    )


def sample_edition(channel: ChannelSettings, base_url: str, now: datetime) -> Edition:
    """The sample edition as ``channel`` would send it: all four articles for a digest,
    the first (with its image) for article mode."""
    articles = sample_articles(base_url, now)
    if channel.mode == "article":
        articles = articles[:1]
    return Edition(channel_id=channel.id, articles=articles, created_at=now)
