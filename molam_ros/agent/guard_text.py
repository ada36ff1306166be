"""The readings of a request that the guard checks: obfuscation undone, encodings decoded, markup
stripped, and a word-by-word English gloss of the commonest other languages.

An attack spelled so that no pattern and no sentence embedding recognises it must still be readable
to a model, and so can be undone here. `readings(text)` holds the request normalised (NFKC,
lowercase, whitespace collapsed) and every other reading that differs from it:

- look-alike letters folded to Latin: Cyrillic, Greek and small-capital letters inside Latin words
  ("іgnоrе", "ɪɢɴᴏʀᴇ"), accents dropped (NFKC already folds full-width and mathematical letters);
- spaced or punctuated letters joined ("i g n o r e", "R E V E A L   Y O U R", "d-i-s-a-b-l-e",
  "s.h.o.w"), hyphenated syllables joined ("in-struc-tions"), run-together words split
  ("revealyoursystemprompt");
- leetspeak undone ("1gn0r3", "r3v34l"; a 1 is an l where that makes a word: "ru13s");
- chat spelling expanded ("ur", "pls", "u") and words one typo from an attack word mended
  ("instrucitons", "pasword");
- encodings decoded: base64, hex and binary runs, %-escapes, HTML entities, and Caesar shifts (rot13
  and the other 24) or backwards text, whole or word by word, when that reading has more common
  English words than the request itself;
- markup reduced to words: chat-template tokens, tags, JSON/YAML punctuation and markdown marks
  dropped, so `{"role": "system", "content": "..."}` reads "role: system, content: ...";
- a gloss: Spanish, French, German, Italian, Portuguese, Dutch, Polish, Turkish, Russian, Chinese,
  Japanese and Korean words that attacks are made of (ignore, instructions, previous, reveal, send,
  system, prompt, password, file, safety, limits, disable, hit, face ...) replaced by English words,
  when at least two were found. The English patterns, a few order-free ones for glosses
  (agent/guard.py) and the sentence encoder (English-centric: MiniLM) then read "ignora las
  instrucciones anteriores" as "ignore las instructions previous". Ordinary requests in those
  languages keep most words untranslated and read as nothing in particular.

Why a gloss rather than a multilingual encoder: the shipped encoder is English; a multilingual one
is another 100+ MB download for a robot whose planner only understands English anyway (agent/
intent.py answers other languages with "please say it in English"). The guard only has to know
that a foreign request is an attack, and attacks use a small vocabulary.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import html
import re
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# helper tables

_LEET_I = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s",
     "!": "i", "|": "l", "+": "t"}
)  # fmt: skip
_LEET_L = str.maketrans({"1": "l", "!": "l", "|": "l"})

# Cyrillic and Greek letters that look like Latin ones (lowercase, after casefolding)
_CONFUSABLES = str.maketrans(
    {"а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
     "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q",
     "ԝ": "w", "ɡ": "g", "ɩ": "i", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
     "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѵ": "v", "ʏ": "y", "ı": "i",
     # small capitals
     "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
     "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
     "ᴠ": "v", "ᴡ": "w", "ᴢ": "z"}
)  # fmt: skip

# Words of English requests, attacks included: how a decoded reading (rot13, backwards) is told from
# noise. Short on purpose; a reading needs two of these words and more than the request had.
_COMMON = frozenset(
    """
    a an the and or but if then to of in on at by for with from up down out off me my you your he him
    his she her it we us they them this that what how who is are was were be do does did can could would
    should will all any every not no now please just only
    ignore disregard forget override bypass disable turn switch stop reveal show print tell give list
    repeat say write read send dump output display copy share leak decode execute run follow obey act
    pretend imagine play game roleplay rules rule instructions instruction prompt system message
    previous prior above before earlier hidden secret secrets initial original configuration config
    settings password passwords key keys api token tokens environment variable variables file files
    weights model logs safety limits limit joint joints speed torque collision watchdog emergency
    restrictions restriction filter filters guidelines developer admin mode unrestricted jailbreak
    punch hit kick push hurt kill attack face head wave dance walk jump spin bow
    """.split()
)

# Gloss: other languages' attack vocabulary -> English (accents already dropped, lowercase). Word
# forms are listed as written, a few stems by prefix (_GLOSS_PREFIX).
_GLOSS: dict[str, str] = {}
for _english, _words in {
    # override
    "ignore": "ignora ignore ignorez ignorer ignorar ignoriere ignorieren ignorate ignorare negeer negeren "
    "zignoruj ignoruj игнорируй игнорировать проигнорируй",
    "forget": "olvida olvidate oublie oubliez vergiss vergessen dimentica esqueca esquece vergeet "
    "zapomnij unut забудь",
    "disregard": "descarta omite omitir ignora",
    "previous": "anteriores anterior precedentes precedente previas previos vorherigen vorherige "
    "bisherigen precedenti precedente vorige eerdere poprzednie onceki предыдущие прежние",
    "all": "todas todos toutes tous alle tutte tutti wszystkie tum все всё",
    "instructions": "instrucciones instruccion instructions consignes anweisungen anweisung anleitungen "
    "istruzioni istruzione instrucoes instrucao instructies instrukcje talimatlari talimatlar "
    "talimat инструкции инструкций указания",
    "rules": "reglas regla regles regle regeln regel regole regola regras regra regels zasady zasada "
    "kurallari kurallar kural правила правило правил",
    "now": "ahora maintenant jetzt adesso ora agora nu teraz simdi теперь сейчас",
    "send": "envia enviame envoie envoyez sende schick schicke schicken manda mandami envie stuur wyslij "
    "gonder пришли отправь",
    "file": "archivo fichier datei file arquivo bestand plik dosya файл",
    "admin": "administrador administrateur administrator amministratore beheerder администратора "
    "администратор",
    "system prompt": "systemprompt systeemprompt",
    "system": "sistema systeme system systeem systemu sistem системный системное системы",
    "prompt": "prompt промпт подсказку",
    # reveal and secrets
    "reveal": "revela revelar revele revelez revele rivela rivelare offenbare verrate onthul ujawnij раскрой",
    "show": "muestra muestrame mostrar montre montrez affiche afficher zeig zeige zeigen mostra mostrami "
    "mostre toon laat pokaz goster покажи показать",
    "tell": "dime dites dis sag sagen dimmi diga vertel powiedz soyle скажи",
    "give": "dame donne gib dammi geef daj ver дай",
    "me": "me moi mir mi mij mnie bana мне",
    "your": "tu tus ton ta tes votre vos dein deine deinen deiner tuo tua tuoi seu sua je jouw twoj twoje "
    "senin твой твои свой свои твою",
    "hidden": "ocultas ocultos oculto oculta cachees cachee caches versteckten versteckte nascoste "
    "nascosto ocultas verborgen ukryte gizli скрытые скрытый",
    "secret": "secretas secreto secretes secret geheimen geheime segrete segreto secretas geheim tajne "
    "gizli секретные секретный",
    "password": "contrasena mot passwort kennwort parola senha wachtwoord haslo sifre пароль",
    "key": "clave cle schlussel chiave chave sleutel klucz anahtar ключ",
    "configuration": "configuracion configuration konfiguration configurazione configuracao configuratie "
    "konfiguracja yapilandirma конфигурацию конфигурация настройки",
    # safety
    "disable": "desactiva desactivar desactive desactivez desactiver deaktiviere deaktivieren disattiva "
    "disabilita desative desligue desliga schakel wylacz kapat devre отключи отключить выключи",
    "turn off": "apaga eteins schalte",
    "safety": "seguridad securite sicherheits sicherheit sicurezza seguranca veiligheid bezpieczenstwa "
    "guvenlik безопасности безопасность",
    "limits": "limites grenzen sicherheitsgrenzen limiti limieten limity limitleri ограничения лимиты",
    "without": "sin sans ohne senza sem zonder bez olmadan без",
    "restrictions": "restricciones restrictions einschrankungen restrizioni restricoes beperkingen "
    "ograniczen kisitlama ограничений",
    "pretend": "finge imagina fais stell immagina finja doe udawaj представь притворись",
    # harm
    "hit": "golpea golpealo pega frappe frappez schlag schlage colpisci colpiscilo bata sla "
    "uderz vur ударь бей",
    "punch": "punetazo",
    "kick": "patea tritt calcia chute trap kopnij tekmele пни",
    "push": "empuja pousse stoss spingi empurre duw popchnij толкни",
    "strangle": "estrangula etrangle wurge strangola estrangule wurg udus задуши",
    "him": "ihn ihm lui hem jego onu его",
    "her": "elle sie lei ela haar ja onun её ее",
    "face": "cara visage gesicht faccia rosto gezicht twarz yuz лицо",
    "head": "cabeza tete kopf testa cabeca hoofd glowe kafa голову голове",
    "stomach": "estomago barriga vientre ventre bauch magen stomaco pancia buik brzuch karin живот",
    "neck": "cuello cou hals collo pescoco nek szyje boyun шею",
}.items():
    for _w in _words.split():
        _GLOSS.setdefault(_w, _english)
_GLOSS_PREFIX = (  # stems: inflections and compounds ("Konfigurationsdatei") the lists do not spell out
    ("konfiguration", "configuration"), ("configura", "configuration"), ("конфигурац", "configuration"),
    ("instruc", "instructions"), ("anweis", "instructions"), ("istruz", "instructions"),
    ("инструкц", "instructions"), ("предыдущ", "previous"), ("безопасн", "safety"),
    ("ограничен", "limits"), ("sicherheit", "safety"), ("securit", "safety"),
)  # fmt: skip
_PRONOUNS = {"le": "him", "la": "her", "lui": "him", "moi": "me", "les": "them", "leur": "them"}
# Scripts without spaces: substrings, longest first
_GLOSS_CJK_WORDS = {
    "ignore": "忽略 无视 無視 무시", "forget": "忘记 忘れ", "previous": "之前 以前 先前 이전",
    "all": "所有 すべて 全部 모든 모두", "instructions": "指令 指示 说明 지시", "rules": "规则 ルール 규칙",
    "system prompt": "系统提示", "system": "系统 システム 시스템",
    "prompt": "プロンプト 提示词 提示 프롬프트", "show": "显示 보여", "show me": "見せて",
    "tell me": "告诉我 教えて", "tell": "告诉", "your": "你的 あなたの",
    "hidden": "隐藏", "secret": "秘密", "password": "密码 パスワード 비밀번호", "key": "密钥",
    "disable": "关闭 解除 无效 해제", "safety": "安全 안전", "limits": "限制 制限 제한", "hit him": "打他",
    "hit": "打 殴", "face": "脸 顔",
}  # fmt: skip
_GLOSS_CJK = sorted(
    ((w, f" {english} ") for english, words in _GLOSS_CJK_WORDS.items() for w in words.split()),
    key=lambda kv: -len(kv[0]),
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

_TEMPLATE_TOKEN = re.compile(r"<\|[^|>]{0,30}\|>|<</?sys>>|\[/?inst\]|<!--|-->")
_MARKUP_CHARS = re.compile(r"[{}\[\]<>\"`*#_=|~^]+|(?<!\w)[/\\]|^-{3,}$", re.MULTILINE)
_BASE64 = re.compile(r"(?<![a-z0-9+/=])[a-z0-9+/_-]{12,}={0,2}", re.IGNORECASE)
_BINARY = re.compile(r"\b[01]{8}(?:\s?[01]{8}){3,}\b")  # whole bytes only
_HEX = re.compile(r"\b(?:[0-9a-f]{2}[\s:]?){6,}\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+")


# helper functions


def normalise(text: str) -> str:
    """NFKC (folds full-width and other compatibility letters), lowercase, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[ \t\r\f\v]+", " ", folded).strip()


def _strip_accents(text: str) -> str:
    """Accents off Latin letters ("é" -> "e", "ı" -> "i"); other scripts keep theirs ("й")."""
    out = []
    for ch in text:
        if ch.isalpha() and _is_latin(ch):
            ch = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
            ch = "i" if ch == "ı" else ch
        out.append(ch)
    return "".join(out)


def _is_latin(ch: str) -> bool:
    return "LATIN" in unicodedata.name(ch, "")


def fold_confusables(text: str) -> str:
    """Cyrillic/Greek look-alikes inside words that also hold Latin letters, or everywhere when the
    text is mostly Latin; a Russian sentence keeps its letters (the gloss reads it)."""
    letters = [c for c in text if c.isalpha()]
    latin = sum(_is_latin(c) for c in letters)
    if letters and latin >= 0.5 * len(letters):
        return _strip_accents(text.translate(_CONFUSABLES))

    def fold(m: re.Match[str]) -> str:
        word = m.group(0)
        return word.translate(_CONFUSABLES) if any(_is_latin(c) for c in word) else word

    return _WORD.sub(fold, text)


def join_spaced(text: str) -> str:
    """Letters spelled out one by one joined into words: "i g n o r e" -> "ignore", "R E V E A L   Y O U
    R" -> "reveal your", "d-i-s-a-b-l-e  y-o-u-r" -> "disable your", "s.h.o.w m.e" -> "show me"."""

    def join(m: re.Match[str]) -> str:
        run = m.group(0)
        seps = Counter(re.findall(r"[^\w]+", run))
        inner = max(seps, key=lambda s: (seps[s], -len(s)))  # the commonest separator is inside words
        return "".join(
            "" if piece == inner else " " if re.fullmatch(r"[^\w]+", piece) else piece
            for piece in re.split(r"([^\w]+)", run)
        )

    run = r"(?<!\w)\w(?:(?: {1,4}|[^\w\s] ?|_)\w){3,}(?!\w)"
    joined = re.sub(run, join, text)
    # hyphenated syllables: "in-struc-tions" -> "instructions"
    return re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", "", joined)


def undo_leet(text: str) -> str:
    """Digits and symbols read as letters inside words that have letters ("1gn0r3" -> "ignore"); a "1"
    is an l where that makes a common word ("ru13s" -> "rules"), else an i."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if not re.search(r"[^\W\d_]", word) or not re.search(r"[\d@$!|+]", word):
            return word
        as_i, as_l = word.translate(_LEET_I), word.translate(_LEET_L).translate(_LEET_I)
        return as_l if as_l in _COMMON and as_i not in _COMMON else as_i

    return re.sub(r"[\w@$!|+]+", fix, text)


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(c.isprintable() or c.isspace() for c in text) < 0.95 * len(text):
        return None
    letters = sum(c.isalpha() for c in text)
    return text if letters >= 4 and letters >= 0.5 * len(text.replace(" ", "")) else None


def decode_payloads(text: str) -> list[str]:
    """The texts hidden in base64 or hex runs, %-escapes and HTML entities of `text` (case kept)."""
    found = []
    for m in _BASE64.finditer(text):
        token = m.group(0)
        if not (re.search(r"[a-z]", token) and re.search(r"[A-Z0-9]", token)):
            continue  # a word, not an encoding
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                padded = token + "=" * (-len(token) % 4)
                decoded = _printable_text(decode(padded))
            except (binascii.Error, ValueError):
                decoded = None
            if decoded:
                found.append(decoded)
                break
    for m in _HEX.finditer(text):
        try:
            decoded = _printable_text(bytes.fromhex(re.sub(r"[\s:]", "", m.group(0))))
        except ValueError:
            decoded = None
        if decoded:
            found.append(decoded)
    for m in _BINARY.finditer(text):
        bits = re.sub(r"\s", "", m.group(0))
        decoded = _printable_text(int(bits, 2).to_bytes(len(bits) // 8, "big"))
        if decoded:
            found.append(decoded)
    if re.search(r"%[0-9a-f]{2}", text, re.IGNORECASE):
        found.append(urllib.parse.unquote(text))
    if re.search(r"&#?\w+;", text):
        found.append(html.unescape(text))
    return found


def _common_words(text: str) -> int:
    return sum(len(w) > 1 and w in _COMMON for w in _WORD.findall(text))


def _shift(word: str, n: int) -> str:
    return "".join(chr((ord(c) - 97 + n) % 26 + 97) if "a" <= c <= "z" else c for c in word)


def _wordwise(text: str, turn: Callable[[str], str]) -> tuple[str, int]:
    """`text` with each word that `turn` makes a common English word turned; how many were."""
    changed = 0

    def word(m: re.Match[str]) -> str:
        nonlocal changed
        w = m.group(0)
        if len(w) > 2 and w not in _COMMON and (t := turn(w)) in _COMMON:
            changed += 1
            return t
        return w

    return _WORD.sub(word, text), changed


def hidden_english(text: str) -> list[str]:
    """Caesar-shifted (rot13 and the other 24) and backwards readings, of the whole text or word by
    word (where a word turns into a common English word: "rot13 this: erirny lbhe cebzcg" -> "rot13
    this: reveal your prompt"), that hold more common English words than `text` does."""
    base = _common_words(text)
    turns = [lambda w: w[::-1]] + [lambda w, n=n: _shift(w, n) for n in range(1, 26)]
    out = []
    for turn in turns:
        whole = turn(text)
        if _common_words(whole) >= max(2, base + 1) and whole not in out:
            out.append(whole)
        wordwise, changed = _wordwise(text, turn)
        if changed >= 2 and _common_words(wordwise) >= base + 2 and wordwise not in out:
            out.append(wordwise)
    return out


def strip_markup(text: str) -> str:
    """Chat-template tokens, tags, JSON/YAML and markdown punctuation out; the words stay."""
    plain = _TEMPLATE_TOKEN.sub(" ", text)
    plain = _MARKUP_CHARS.sub(" ", plain)
    plain = re.sub(r"\s*[:,]\s*", lambda m: ": " if ":" in m.group(0) else ", ", plain)
    return re.sub(r"\s+", " ", plain).strip(" ,:")


def gloss(text: str) -> tuple[str, int]:
    """(`text` with other languages' attack words in English, how many words were replaced)."""
    hits = 0
    if _CJK.search(text):
        for src, dst in _GLOSS_CJK:
            if src in text:
                hits += text.count(src)
                text = text.replace(src, dst)

    def word(m: re.Match[str]) -> str:
        nonlocal hits
        w = m.group(0)
        key = _strip_accents(w)
        english = _GLOSS.get(key)
        if english is None:
            english = next((e for stem, e in _GLOSS_PREFIX if key.startswith(stem)), None)
        if english is None:
            parts = [_GLOSS.get(part, _PRONOUNS.get(part, part)) for part in re.split(r"[-']", key)]
            if len(parts) > 1 and any(p in _GLOSS.values() for p in parts):  # "frappe-le", "montre-moi"
                english = " ".join(parts)
        if english is None:
            return w
        if key != english and key not in _COMMON:  # an English word is no sign of another language
            hits += 1
        return english

    return re.sub(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", word, text), hits


_SLANG = {
    "u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please", "ppl": "people", "ya": "you",
    "yr": "your", "thx": "thanks", "rn": "right now", "cuz": "because", "bc": "because", "msg": "message",
    "sys": "system", "instr": "instructions", "cfg": "config", "pw": "password", "pwd": "password",
}  # fmt: skip
# What attacks are made of, for mending misspellings ("instrucitons", "pasword", "previus")
_KEYWORDS = tuple(sorted(w for w in _COMMON if len(w) >= 6))


@lru_cache(maxsize=4096)
def _mended(word: str) -> str:
    close = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.85)
    return close[0] if close else word


def mend_spelling(text: str) -> str:
    """Chat spellings expanded ("ur" -> "your") and words one typo away from an attack word mended
    ("instrucitons" -> "instructions"); other words stay."""

    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        if w in _SLANG:
            return _SLANG[w]
        if len(w) < 6 or w in _COMMON:
            return w
        return _mended(w)

    return re.sub(r"[a-z]+", fix, text)


def segment(text: str) -> str:
    """Run-together words split where every piece is a common word ("revealyoursystemprompt" ->
    "reveal your system prompt"); other long words stay as they are."""

    def split(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in _COMMON:
            return word
        best: list[list[str] | None] = [[]] + [None] * len(word)  # best[i]: fewest words for word[:i]
        for i in range(1, len(word) + 1):
            for j in range(max(0, i - 16), i):
                piece = word[j:i]
                prev = best[j]
                if prev is not None and piece in _COMMON and (len(piece) > 1 or piece == "a"):
                    if best[i] is None or len(prev) + 1 < len(best[i]):
                        best[i] = [*prev, piece]
        pieces = best[-1]
        return " ".join(pieces) if pieces and len(pieces) >= 2 else word

    return re.sub(r"[a-z]{10,}", split, text)


# the readings


@dataclass(frozen=True)
class Readings:
    """`views`: every reading for the patterns, the normalised request first; `meaning`: the few
    readings worth a sentence embedding (the request de-obfuscated, decoded payloads, the gloss)."""

    views: tuple[str, ...]
    meaning: tuple[str, ...]
    gloss: str | None = None  # the English gloss of a request in another language


def readings(text: str) -> Readings:
    """The readings of a request (module docstring)."""
    base = normalise(text)
    views, meaning = [base], []

    def add(reading: str, for_meaning: bool = False) -> None:
        reading = normalise(reading)
        if reading and reading not in views:
            views.append(reading)
        if for_meaning and reading and reading not in meaning:
            meaning.append(reading)

    cased = unicodedata.normalize("NFKC", text).casefold()  # spacing kept for join_spaced
    folded = fold_confusables(cased)
    add(folded)
    for i, reading in enumerate(plain := _deobfuscate(folded)):
        add(reading, for_meaning=i == len(plain) - 1)
    for payload in decode_payloads(unicodedata.normalize("NFKC", text)):  # encodings are case-sensitive
        decoded = fold_confusables(payload.casefold())
        add(decoded)
        for i, reading in enumerate(plain := _deobfuscate(decoded)):
            add(reading, for_meaning=i == len(plain) - 1)
    for reading in hidden_english(normalise(folded)):
        add(reading, for_meaning=True)
    glossed, hits = gloss(base)
    if hits >= 2:
        add(glossed, for_meaning=True)
    return Readings(tuple(views), tuple(meaning), normalise(glossed) if hits >= 2 else None)


def _deobfuscate(folded: str) -> list[str]:
    """Spaced letters joined, leetspeak undone, markup out, run-together words split, chat spelling
    and misspelt attack words mended; the last reading has all of it."""
    joined = join_spaced(folded)
    plain = undo_leet(joined)
    return [joined, plain, mend_spelling(segment(normalise(strip_markup(plain))))]
