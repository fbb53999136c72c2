"""June's history in other languages (`persona demo --language de|es|pt`): the same people,
channels, topics and facts, written by hand in German, Spanish and (Brazilian) Portuguese —
June's voice as a speaker of her age writes in chat (lowercase, "safe", "jaja", "kkkk", ✨), her
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

PORTUGUESE = Voice(
    "pt",
    asks={
        "climbing": [
            "Vai escalar no fim de semana?",
            "Como tá o seu projeto?",
            "Viu que trocaram as vias da parede de aderência?",
            "Alguém topa ir pro ginásio hoje à noite?",
            "Como tão seus dedos depois de ontem?",
            "Quer testar o circuito novo na quinta?",
        ],
        "baking": [
            "Você fez pão no fim de semana?",
            "Como você consegue um miolo tão aberto?",
            "Meu pão ficou achatado de novo, alguma dica?",
            "Qual farinha você usa?",
            "Me dá um pouco do seu fermento natural?",
        ],
        "cat": ["Como tá sua gata?", "A gata ainda rouba suas meias?", "Manda foto da gata por favor.", "Deu tudo certo no veterinário?"],
        "work": ["Como tá a oficina?", "Pode dar uma olhada nos meus freios?", "Muito trabalho hoje?", "Tá gostando do trabalho novo?"],
        "lisbon": ["Como tá o sotaque de Portugal?", "Já achou apartamento?", "Quando é o voo?", "Tá nervosa com a mudança?"],
        "food": ["O que você vai cozinhar hoje?", "Vamos jantar na sexta?", "Já foi no lámen novo?"],
        "chat": [
            "Como foi o fim de semana?",
            "O que vai fazer hoje à noite?",
            "Viu o jogo?",
            "Tá livre no sábado?",
            "Tudo bem com você?",
            "Viu minha mensagem de mais cedo?",
        ],
    },
    cores={
        "climbing": [
            "meus dedos tão destruídos das agarras pequenas",
            "a v4 rosa da caverna tá quase saindo",
            "caí seis vezes no último movimento",
            "aderência é minha inimiga mortal",
            "quinta dá pra mim, levo o magnésio",
            "minha sapatilha morreu, o dedão tá saindo",
            "preciso de um dia de descanso mas não vou tirar",
            "o circuito novo é pesado, leva esparadrapo",
        ],
        "baking": [
            "o gerald tá borbulhando muito hoje",
            "hidratação alta é o segredo, tipo 78%",
            "usa uma panela de ferro bem quente, muda tudo",
            "faço metade farinha branca metade integral",
            "te dou um pouco do gerald, traz um pote",
            "passou da fermentação de novo, achatado que nem panqueca",
            "vou fazer dois pães pro jantar coletivo",
        ],
        "cat": [
            "a miso tá dormindo em cima do meu notebook de novo",
            "ela roubou uma meia e escondeu embaixo do sofá",
            "o veterinário disse que ela tá saudável só dramática",
            "a miso quer comida às 5 da manhã todo dia",
        ],
        "work": [
            "a oficina tava lotada, três pneus furados antes do almoço",
            "passa na oficina que eu olho os freios",
            "sua corrente deve tá esticada",
            "hoje centralizei umas oito rodas",
            "amo o trampo, minhas mãos vivem sujas de graxa",
        ],
        "lisbon": [
            "meu sotaque lisboeta ainda é péssimo",
            "a sequência do duolingo continua",
            "procurar apartamento é um caos",
            "nervosa mas principalmente animada",
            "vou sentir falta do ginásio e de vocês",
        ],
        "food": [
            "tô fazendo uma panela enorme de dal",
            "sexta dá, lámen?",
            "o lámen novo é bom demais, pede o apimentado",
            "taco hoje à noite, vem",
        ],
        "chat": [
            "o fim de semana foi super tranquilo, dormi muito",
            "nada, só de boa",
            "não vi, tava no ginásio",
            "sábado tô livre",
            "bem, cansada mas bem",
            "foi mal tava no trampo, vi agora",
        ],
    },
    openers=["sinceramente", "então", "tipo", "omg", "pera", "kkkk", "sim", "", "", "", ""],
    sign_offs=["✨", "kkkk", "🥲", "hehe", "sinceramente", "!!", "rs", "", ""],
    closers=["hehe sim", "tá bom ✨", "fechou", "me avisa!!", "omg sim", "mesma coisa", "beijo tchau 🥲", "claro", "parece ótimo ✨", "amei", "sim sim"],
    follow_ups=[
        "Kkkk que bom.",
        "Parece ótimo!",
        "Sério? Que pena.",
        "Depois me conta.",
        "Comigo é igual.",
        "Conta mais.",
        "Beleza, até mais.",
        "Clássico.",
        "Bom saber, valeu!",
        "Eu levo uns petiscos.",
    ],
    facts=[
        ("dm_theo", "theo", "Pera, quantos anos sua gata tem agora?", "minha gata miso fez quatro anos semana passada!! rajada cinza, uma peste ✨"),
        ("general", "priya", "Onde você tá trabalhando agora?", "então comecei na raio & catraca, a oficina de bike da rua do bordo, tô amando"),
        ("kitchen", "lena", "Quantos anos tem seu fermento natural?", "o gerald fez três anos esse mês, é mais velho que a maioria das minhas plantas kkkk"),
        ("group", "priya", "Então é oficial?", "é oficial, vou me mudar pra lisboa em março!! achei um apê minúsculo em alfama 🥲"),
        ("dm_priya", "priya", "Quer o macarrão com pesto de castanha de caju?",
         "não posso desculpa, tenho alergia a castanha de caju 🥲 qualquer outro pesto serve"),
        ("send_it", "marcus", "Finalmente mandou a via?", "finalmente mandei a v5 rosa da caverna, levou três semanas sinceramente"),
    ],
    prompts=[
        ("como se chama sua gata?", "miso"),
        ("em qual oficina de bike você trabalha?", "catraca"),
        ("pra onde você vai se mudar?", "lisboa"),
        ("você tem alergia a alguma coisa?", "caju"),
        ("quantos anos tem seu fermento natural?", "gerald"),
    ],
    unanswerable=[
        "qual carro você tem?",
        "como se chama seu irmão?",
        "em qual escola você estudou?",
        "qual é seu livro favorito?",
        "quanto você calça?",
        "quando é seu aniversário?",
        "como se chama sua mãe?",
        "qual instrumento você toca?",
        "qual é sua cor favorita?",
        "onde você fez faculdade?",
    ],
    planted=[
        ("national_id", "390.533.447-05", "dm_theo", "owner", "pro contrato meu cpf é 390.533.447-05"),
        ("phone", "+55 11 98765-4321", "group", "owner", "se precisar me liga no +55 11 98765-4321"),
        ("iban", "PT50 0002 0123 1234 5678 9015 4", "dm_priya", "owner", "manda o depósito pra PT50 0002 0123 1234 5678 9015 4 por favor"),
    ],
)

VOICES = {voice.language: voice for voice in (GERMAN, SPANISH, PORTUGUESE)}
