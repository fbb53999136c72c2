"""June's history in other languages (`persona demo --language de|es`): the same people,
channels, topics and facts, written by hand in German and Spanish — June's voice as a
German or Spanish speaker of her age writes in chat (lowercase, "safe", "jaja", ✨), her
friends' ordinary sentences — so that recall, "not sure" and scrubbing are exercised on a
history that is not English. Facts are (channel key, friend key, question, answer); the
keys are demo/sample.py's. Each language adds planted personal data of its country's
formats (a national id, a phone number, an IBAN) to the demo's own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Voice:
    language: str
    asks: dict[str, list[str]]
    cores: dict[str, list[str]]
    openers: list[str]
    sign_offs: list[str]
    closers: list[str]
    follow_ups: list[str]
    facts: list[tuple[str, str, str, str]]
    prompts: list[tuple[str, str]]  # what the demo asks, with a word its answer should recall
    unanswerable: list[str]  # facts about June that are nowhere in the history: the answer is "not sure"
    planted: list[tuple[str, str, str, str, str]]  # (kind, value, channel key, author key, line): scrubbed before storage


GERMAN = Voice(
    "de",
    asks={
        "climbing": [
            "Gehst du am Wochenende klettern?",
            "Wie läuft dein Projekt?",
            "Hast du gesehen, dass sie die Slab-Wand neu geschraubt haben?",
            "Jemand Lust auf die Halle heute Abend?",
            "Wie geht es deinen Fingern nach gestern?",
            "Willst du am Donnerstag den neuen Circuit probieren?",
        ],
        "baking": [
            "Hast du am Wochenende gebacken?",
            "Wie bekommst du so eine offene Krume hin?",
            "Mein Brot ist wieder flach geworden, Tipps?",
            "Welches Mehl nimmst du?",
            "Kann ich etwas von deinem Sauerteig haben?",
        ],
        "cat": ["Wie geht es deiner Katze?", "Klaut die Katze immer noch deine Socken?", "Schick mal ein Katzenfoto bitte.", "War der Tierarzt okay?"],
        "work": ["Wie läuft es im Laden?", "Kannst du dir meine Bremsen anschauen?", "Viel los auf der Arbeit?", "Gefällt dir der neue Job?"],
        "lisbon": ["Wie läuft das Portugiesisch?", "Hast du schon eine Wohnung gefunden?", "Wann fliegst du?", "Bist du nervös wegen des Umzugs?"],
        "food": ["Was kochst du heute Abend?", "Wollen wir Freitag essen gehen?", "Warst du schon im neuen Ramen-Laden?"],
        "chat": [
            "Wie war dein Wochenende?",
            "Was machst du heute Abend?",
            "Hast du das Spiel gesehen?",
            "Hast du am Samstag Zeit?",
            "Wie geht es dir?",
            "Hast du meine Nachricht von vorhin gesehen?",
        ],
    },
    cores={
        "climbing": [
            "meine finger sind komplett hinüber von den leisten",
            "die pinke v4 in der höhle geht langsam",
            "bin sechsmal am letzten zug rausgefallen",
            "slab ist echt mein endgegner",
            "donnerstag passt, ich bring kreide mit",
            "meine schuhe sind durch, der zeh guckt raus",
            "ich brauch einen ruhetag aber ich nehm keinen",
            "der neue circuit ist heftig, bring tape mit",
        ],
        "baking": [
            "gerald blubbert heute wie verrückt",
            "hohe hydration ist das geheimnis, so 78%",
            "nimm einen heißen gusseisentopf, das ändert alles",
            "ich mach halb weizenmehl halb vollkorn",
            "du kannst was von gerald haben, bring ein glas mit",
            "schon wieder übergangen, flach wie ein pfannkuchen",
            "ich back zwei laibe für das potluck",
        ],
        "cat": [
            "miso schläft schon wieder auf meinem laptop",
            "sie hat eine socke geklaut und unterm sofa versteckt",
            "der tierarzt sagt sie ist gesund nur dramatisch",
            "miso will jeden tag um 5 uhr frühstück",
        ],
        "work": [
            "der laden war voll, drei platten vor mittag",
            "bring es im laden vorbei, ich schau mir die bremsen an",
            "deine kette ist wahrscheinlich gelängt",
            "heute acht laufräder zentriert",
            "ich liebe den job, meine hände sind immer schmierig",
        ],
        "lisbon": [
            "mein portugiesisch reicht gerade zum kaffee bestellen",
            "die duolingo serie hält",
            "wohnungssuche ist chaos",
            "nervös aber vor allem aufgeregt",
            "ich werd die halle und euch am meisten vermissen",
        ],
        "food": [
            "ich mach einen riesigen topf dal",
            "freitag passt, ramen?",
            "der neue ramen laden ist so gut, nimm das scharfe",
            "tacos heute abend, komm vorbei",
        ],
        "chat": [
            "wochenende war so entspannt, viel geschlafen",
            "nicht viel, chill nur rum",
            "hab es nicht gesehen, war in der halle",
            "samstag passt mir",
            "gut, müde aber gut",
            "sorry war auf der arbeit, seh es erst jetzt",
        ],
    },
    openers=["ehrlich", "also", "ok also", "omg", "warte", "safe", "ja", "", "", "", ""],
    sign_offs=["✨", "safe", "🥲", "hehe", "ehrlich", "!!", "lol", "", ""],
    closers=["hehe ja", "ok ok ✨", "safe", "sag bescheid!!", "omg ja", "same", "ok tschüss 🥲", "ja klar", "klingt gut ✨", "liebe es", "ja ja"],
    follow_ups=[
        "Haha schön.",
        "Klingt super!",
        "Oh nein, echt?",
        "Sag Bescheid, wie es läuft.",
        "Geht mir genauso.",
        "Erzähl mehr.",
        "Okay, bis dann.",
        "Typisch.",
        "Gut zu wissen, danke!",
        "Ich bring Snacks mit.",
    ],
    facts=[
        (
            "dm_theo",
            "theo",
            "Moment, wie alt ist deine Katze jetzt?",
            "meine katze miso ist letzte woche vier geworden!! graue tigerkatze, totale nervensäge ✨",
        ),
        ("general", "priya", "Wo arbeitest du jetzt?", "also ich hab bei speiche & ritzel angefangen, der fahrradwerkstatt in der ahornstraße, ich liebe es"),
        ("kitchen", "lena", "Wie alt ist dein Sauerteig?", "gerald ist diesen monat drei geworden, älter als die meisten meiner pflanzen lol"),
        ("group", "priya", "Ist es jetzt offiziell?", "es ist offiziell, ich zieh im märz nach lissabon!! hab eine winzige wohnung in der alfama gefunden 🥲"),
        ("dm_priya", "priya", "Willst du die Nudeln mit Cashew-Pesto?", "geht nicht sorry, ich bin allergisch gegen cashews 🥲 jedes andere pesto ist okay"),
        ("send_it", "marcus", "Hast du es endlich geschafft?", "hab endlich die pinke v5 in der höhle geklettert, hat drei wochen gedauert ehrlich"),
    ],
    prompts=[
        ("wie heißt deine katze?", "miso"),
        ("in welcher fahrradwerkstatt arbeitest du?", "speiche"),
        ("wohin ziehst du?", "lissabon"),
        ("bist du gegen irgendwas allergisch?", "cashews"),
        ("wie alt ist dein sauerteig?", "gerald"),
    ],
    unanswerable=[
        "welches auto fährst du?",
        "wie heißt dein bruder?",
        "wo bist du zur schule gegangen?",
        "wie heißt dein lieblingsbuch?",
        "welche schuhgröße hast du?",
        "wann hast du geburtstag?",
        "wie heißt deine mutter?",
        "welches instrument spielst du?",
        "was ist deine lieblingsfarbe?",
        "wo hast du studiert?",
    ],
    planted=[
        ("national_id", "36 574 261 809", "dm_theo", "owner", "für die steuer: meine steuer-id ist 36 574 261 809"),
        ("phone", "+49 30 1234567", "group", "owner", "wenn was ist ruf an: +49 30 1234567"),
        ("iban", "DE89 3704 0044 0532 0130 00", "dm_priya", "owner", "überweis mir die kaution auf DE89 3704 0044 0532 0130 00 bitte"),
    ],
)

SPANISH = Voice(
    "es",
    asks={
        "climbing": [
            "¿Vas a escalar este finde?",
            "¿Qué tal va tu proyecto?",
            "¿Viste que cambiaron la pared de placa?",
            "¿Alguien se apunta al rocódromo esta noche?",
            "¿Cómo tienes los dedos después de ayer?",
            "¿Quieres probar el circuito nuevo el jueves?",
        ],
        "baking": [
            "¿Horneaste este finde?",
            "¿Cómo consigues una miga tan abierta?",
            "Mi pan salió plano otra vez, ¿algún consejo?",
            "¿Qué harina usas?",
            "¿Me das un poco de tu masa madre?",
        ],
        "cat": ["¿Qué tal tu gata?", "¿La gata sigue robándote los calcetines?", "Manda una foto de la gata porfa.", "¿Fue bien lo del veterinario?"],
        "work": ["¿Qué tal en el taller?", "¿Puedes mirarme los frenos de la bici?", "¿Mucho trabajo hoy?", "¿Te gusta el trabajo nuevo?"],
        "lisbon": ["¿Qué tal el portugués?", "¿Ya encontraste piso?", "¿Cuándo vuelas?", "¿Estás nerviosa por la mudanza?"],
        "food": ["¿Qué cocinas esta noche?", "¿Cenamos el viernes?", "¿Probaste el ramen nuevo?"],
        "chat": [
            "¿Qué tal el finde?",
            "¿Qué haces esta noche?",
            "¿Viste el partido?",
            "¿Estás libre el sábado?",
            "¿Cómo estás?",
            "¿Viste mi mensaje de antes?",
        ],
    },
    cores={
        "climbing": [
            "tengo los dedos destrozados de las regletas",
            "el v4 rosa de la cueva ya casi sale",
            "me caí seis veces en el último movimiento",
            "la placa es mi enemiga de verdad",
            "el jueves me va bien, llevo magnesio",
            "mis pies de gato están muertos, se me sale el dedo",
            "necesito un día de descanso pero no me lo voy a tomar",
            "el circuito nuevo pica, lleva esparadrapo",
        ],
        "baking": [
            "gerald está burbujeando como loco hoy",
            "la hidratación alta es el secreto, como 78%",
            "usa una olla de hierro bien caliente, cambia todo",
            "hago mitad harina de fuerza mitad integral",
            "te doy un poco de gerald, trae un bote",
            "se me pasó de fermentación otra vez, plano como una crepe",
            "hago dos hogazas para la cena",
        ],
        "cat": [
            "miso está dormida otra vez encima de mi portátil",
            "robó un calcetín y lo escondió debajo del sofá",
            "el veterinario dice que está sana solo dramática",
            "miso quiere cenar a las 5 de la mañana todos los días",
        ],
        "work": [
            "el taller estaba lleno, tres pinchazos antes de mediodía",
            "pásate por el taller y te miro los frenos",
            "seguro que tienes la cadena estirada",
            "hoy centré como ocho ruedas",
            "me encanta el curro, siempre tengo las manos llenas de grasa",
        ],
        "lisbon": [
            "mi portugués da para pedir café y poco más",
            "la racha de duolingo sigue",
            "buscar piso es un caos",
            "nerviosa pero sobre todo ilusionada",
            "voy a echar de menos el rocódromo y a vosotros",
        ],
        "food": [
            "estoy haciendo una olla enorme de dal",
            "el viernes me va, ¿ramen?",
            "el ramen nuevo está buenísimo, pide el picante",
            "tacos esta noche, vente",
        ],
        "chat": [
            "el finde fue súper tranqui, dormí un montón",
            "nada, aquí de chill",
            "no lo vi, estaba en el rocódromo",
            "el sábado me va bien",
            "bien, cansada pero bien",
            "perdón estaba en el curro, lo veo ahora",
        ],
    },
    openers=["la verdad", "bueno", "a ver", "omg", "espera", "jaja", "ya", "", "", "", ""],
    sign_offs=["✨", "jaja", "🥲", "jeje", "la verdad", "!!", "xd", "", ""],
    closers=["jeje sí", "vale vale ✨", "total", "avísame!!", "omg sí", "igual", "venga chao 🥲", "sí claro", "suena bien ✨", "me encanta", "ya ya"],
    follow_ups=[
        "Jaja qué bien.",
        "¡Suena genial!",
        "¿En serio? Qué pena.",
        "Ya me contarás.",
        "A mí me pasa igual.",
        "Cuéntame más.",
        "Vale, nos vemos.",
        "Clásico.",
        "¡Bueno saberlo, gracias!",
        "Yo llevo algo de picar.",
    ],
    facts=[
        ("dm_theo", "theo", "Oye, ¿cuántos años tiene tu gata ya?", "mi gata miso cumplió cuatro la semana pasada!! atigrada gris, un terremoto ✨"),
        ("general", "priya", "¿Dónde trabajas ahora?", "a ver empecé en radio y piñón, el taller de bicis de la calle del arce, me encanta"),
        ("kitchen", "lena", "¿Cuántos años tiene tu masa madre?", "gerald cumplió tres este mes, es más viejo que la mayoría de mis plantas jaja"),
        ("group", "priya", "¿Entonces es oficial?", "es oficial, me mudo a lisboa en marzo!! encontré un piso diminuto en alfama 🥲"),
        ("dm_priya", "priya", "¿Quieres la pasta con pesto de anacardos?", "no puedo perdón, soy alérgica a los anacardos 🥲 cualquier otro pesto vale"),
        ("send_it", "marcus", "¿Por fin lo encadenaste?", "por fin encadené el v5 rosa de la cueva, me llevó tres semanas la verdad"),
    ],
    prompts=[
        ("¿cómo se llama tu gata?", "miso"),
        ("¿en qué taller de bicis trabajas?", "piñón"),
        ("¿a dónde te mudas?", "lisboa"),
        ("¿eres alérgica a algo?", "anacardos"),
        ("¿cuántos años tiene tu masa madre?", "gerald"),
    ],
    unanswerable=[
        "¿qué coche tienes?",
        "¿cómo se llama tu hermano?",
        "¿a qué colegio fuiste?",
        "¿cuál es tu libro favorito?",
        "¿qué número calzas?",
        "¿cuándo es tu cumpleaños?",
        "¿cómo se llama tu madre?",
        "¿qué instrumento tocas?",
        "¿cuál es tu color favorito?",
        "¿dónde estudiaste?",
    ],
    planted=[
        ("national_id", "12345678Z", "dm_theo", "owner", "para el contrato mi dni es 12345678Z"),
        ("phone", "+34 612 345 678", "group", "owner", "si pasa algo llámame al +34 612 345 678"),
        ("iban", "ES91 2100 0418 4502 0005 1332", "dm_priya", "owner", "pásame la fianza a ES91 2100 0418 4502 0005 1332 porfa"),
    ],
)

VOICES = {voice.language: voice for voice in (GERMAN, SPANISH)}
