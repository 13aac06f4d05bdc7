"""Words that carry no topic: dropped from documents and queries alike.

English, and Russian function words (the tokenizer has a Russian stemmer for Cyrillic
words): prepositions, conjunctions, particles, pronouns and their common forms, and a few
adverbs, written as ``text.fold`` leaves them (lower case, ``ё`` as ``е``). One-letter words
(``и``, ``в``, ``с``…) are dropped anyway. Topic-neutral research words (``статья``,
``метод``) are not listed: Russian inflects them into many forms.
"""

from __future__ import annotations

STOP_WORDS = frozenset(
    """
    a about above across after again against all also am among an and another any anything
    approach approaches are area areas around as at away back based be became because become
    becomes been before being below best better between both but by can could did do does doing
    down during e each eg especially etc even everything few field fields focus focused focusing
    for from further g get gets give given gives good great had has have having he hence her
    here hers him his how however i idea ideas ie if in include includes including interest
    interested interests into is it its itself just kind kinds let lets like look looking made
    mainly make makes making many may me method methods might more most mostly much must my need
    needs new no nor not novel now of off often on once one only or other our ours out over own
    paper papers particularly problem problems propose proposed question questions related
    research result results same see seen she should show shows so some something sort still
    studies study such than that the their theirs them then there therefore these they thing
    things this those three through thus to too topic topics toward towards two under until up
    upon us use used using very via vs want wants was way ways we well were what when where
    whether which while who whom why will wish with within without work works would yet you your
    yours
    """.split()  # noqa: SIM905
) | frozenset(
    """
    без более бы был была были было быть вам вас ведь весь во вот все всего всей всем всех
    вся да даже для до другой его ее если есть еще же за здесь из или им ими их как какая
    какие каким какой когда кого которая которого которое которой котором которую которые
    который которых кто ли либо между меня мне мной может можно мы на над наш не него нее
    нет ни них но ну об однако он она они оно от очень по под при про раз сам свой себя
    со так также такие такой там тем теперь то тогда того тоже той только том тот ты уже
    хотя чего чем через что чтобы чья эта эти этих это этого этой этом этот эту
    """.split()  # noqa: SIM905
)
