// The app's two languages. Every text a user reads is written in English in the code, inside
// `t('…')` (or `msg('…')` in a table translated later), and looked up here for Spanish:
// test_translations fails on a text with no entry and on English outside `t()`. The choice is
// remembered in the browser; without one the account's language, then the browser's, decides.

const KEY = 'streamia.lang';
export const LANGUAGES = [
  ['es', 'Español'],
  ['en', 'English'],
];

const ES = {
  Browse: 'Explorar',
  'My list': 'Mi lista',
  'My ratings': 'Mis valoraciones',
  Admin: 'Administración',
  Profile: 'Perfil',
  'Log out': 'Cerrar sesión',
  'Log in': 'Iniciar sesión',
  'Sign up': 'Registrarse',
  'API docs': 'Documentación de la API',
  Language: 'Idioma',
  'Browse movies': 'Explorar películas',
  Search: 'Buscar',
  'Search titles and descriptions…': 'Busca títulos y descripciones…',
  Category: 'Categoría',
  'All categories': 'Todas las categorías',
  'Sort by': 'Ordenar por',
  Newest: 'Más recientes',
  'Title A–Z': 'Título A–Z',
  'Top rated': 'Mejor valoradas',
  'Loading…': 'Cargando…',
  'No movies on this page. ': 'No hay películas en esta página. ',
  'Go to page 1': 'Ir a la página 1',
  'No movies match your search. ': 'Ninguna película coincide con tu búsqueda. ',
  'Clear filters': 'Quitar filtros',
  'The catalogue is empty.': 'El catálogo está vacío.',
  'Not rated yet': 'Sin valoraciones',
  '← Previous': '← Anterior',
  'Next →': 'Siguiente →',
  Email: 'Correo electrónico',
  Password: 'Contraseña',
  'Forgot your password?': '¿Olvidaste tu contraseña?',
  'Create an account': 'Crear una cuenta',
  'Logging in…': 'Entrando…',
  'Enter your email.': 'Escribe tu correo.',
  'Enter your password.': 'Escribe tu contraseña.',
  'Create your account': 'Crea tu cuenta',
  'First name': 'Nombre',
  'Last name': 'Apellidos',
  Age: 'Edad',
  'Confirm password': 'Confirma la contraseña',
  'Create account': 'Crear cuenta',
  'Creating account…': 'Creando la cuenta…',
  'Already have an account? ': '¿Ya tienes cuenta? ',
  'Required.': 'Obligatorio.',
  'Send reset link': 'Enviar enlace',
  'Sending…': 'Enviando…',
  'Back to log in': 'Volver a iniciar sesión',
  'Reset your password': 'Restablece tu contraseña',
  'New password': 'Nueva contraseña',
  'Confirm new password': 'Confirma la nueva contraseña',
  'Set new password': 'Guardar la nueva contraseña',
  'Password changed': 'Contraseña cambiada',
  'Log in with your new password': 'Inicia sesión con tu nueva contraseña',
  'Your profile': 'Tu perfil',
  Details: 'Datos',
  'Save changes': 'Guardar cambios',
  'Saving…': 'Guardando…',
  'Change password': 'Cambiar contraseña',
  'Current password': 'Contraseña actual',
  'Delete account': 'Eliminar la cuenta',
  'Delete my account': 'Eliminar mi cuenta',
  'Your password': 'Tu contraseña',
  'I understand this cannot be undone': 'Entiendo que no se puede deshacer',
  'The language of the emails Streamia sends you.': 'El idioma de los correos que te envía Streamia.',
  'Page not found': 'Página no encontrada',
  'Go to the catalogue': 'Ir al catálogo',
  Subtitles: 'Subtítulos',
  Off: 'Desactivados',
  Report: 'Denunciar',
  Reported: 'Denunciado',
  'Awaiting review': 'Pendiente de revisión',
  'Resume from {time}': 'Reanudar desde {time}',
  'Start over': 'Empezar de nuevo',
  'Continue watching': 'Seguir viendo',
  Trending: 'Tendencias',
  'Most watched': 'Lo más visto',
  Untitled: 'Sin título',
  'Cover of {title}': 'Portada de {title}',
  '{percent}% watched': '{percent} % visto',
  History: 'Historial',
  Remove: 'Quitar',
  'Removed from your history.': 'Quitada de tu historial.',
  'Show more': 'Ver más',
  'Clear history': 'Borrar el historial',
  'Clear your whole watch history?': '¿Borrar todo tu historial?',
  'Your history was cleared.': 'Tu historial se ha borrado.',
  'Nothing watched yet. ': 'Todavía no has visto nada. ',
  'Find something to watch': 'Busca algo que ver',
  Finished: 'Vista',
  'Stopped at {time} of {total}': 'Parada en {time} de {total}',
  Retry: 'Reintentar',
  'Loading your list…': 'Cargando tu lista…',
  'Your list is empty. ': 'Tu lista está vacía. ',
  'Browse the catalogue': 'Explora el catálogo',
  'Removed “{title}” from your list.': '«{title}» se ha quitado de tu lista.',
  'Added “{title}” to your list.': '«{title}» se ha añadido a tu lista.',
  'Edit note': 'Editar la nota',
  'Add note': 'Añadir una nota',
  'A note for this movie (leave empty to clear):': 'Una nota para esta película (déjala vacía para borrarla):',
  'Note saved.': 'Nota guardada.',
  'Added {date}': 'Añadida el {date}',
  'Loading your ratings…': 'Cargando tus valoraciones…',
  'You have not rated any movie yet. ': 'Todavía no has valorado ninguna película. ',
  'Change rating': 'Cambiar la valoración',
  'Rating updated.': 'Valoración actualizada.',
  'Rating removed.': 'Valoración eliminada.',
  'Rated {date}': 'Valorada el {date}',
  'A movie that is no longer available': 'Una película que ya no está disponible',
  Movie: 'Película',
  'Rating saved.': 'Valoración guardada.',
  'Comment reported.': 'Comentario denunciado.',
  'Comment posted.': 'Comentario publicado.',
  'Comment updated.': 'Comentario actualizado.',
  'Comment deleted.': 'Comentario eliminado.',
  'Comment hidden.': 'Comentario ocultado.',
  'Your rating was removed.': 'Tu valoración se ha eliminado.',
  'Post comment': 'Publicar comentario',
  'Posting…': 'Publicando…',
  'Write something first.': 'Escribe algo primero.',
  'Add a comment': 'Añade un comentario',
  ' to join the conversation.': ' para participar en la conversación.',
  'Show more comments': 'Ver más comentarios',
  Comments: 'Comentarios',
  'Loading comments…': 'Cargando comentarios…',
  'No comments yet. Be the first!': 'Todavía no hay comentarios. ¡Sé el primero!',
  'Remove my rating': 'Quitar mi valoración',
  'Delete this comment?': '¿Eliminar este comentario?',
  'Report this comment to the moderators?': '¿Denunciar este comentario a los moderadores?',
  'Your rating': 'Tu valoración',
  'A comment cannot be empty.': 'Un comentario no puede estar vacío.',
  'Edit your comment': 'Edita tu comentario',
  '♡ Add to my list': '♡ Añadir a mi lista',
  'Log in to save it to your list': 'Inicia sesión para guardarla en tu lista',
  'Edit movie': 'Editar la película',
  '← All movies': '← Todas las películas',
  'Loading movie…': 'Cargando la película…',
  '1 report': '1 denuncia',
  'A language code is required.': 'Hace falta un código de idioma.',
  'A title is required.': 'Hace falta un título.',
  Actions: 'Acciones',
  'Add a movie by URL': 'Añadir una película por URL',
  'Add movie': 'Añadir película',
  'Add or replace': 'Añadir o sustituir',
  'Add subtitles': 'Añadir subtítulos',
  'Adding…': 'Añadiendo…',
  Administration: 'Administración',
  'Administrators only': 'Solo administradores',
  'Cancel upload': 'Cancelar la subida',
  'Choose a .vtt or .srt file.': 'Elige un archivo .vtt o .srt.',
  'Choose a video file.': 'Elige un archivo de vídeo.',
  'Comment moderation': 'Moderación de comentarios',
  'Comment visible again.': 'El comentario vuelve a ser visible.',
  'Cover image': 'Portada',
  'Cover image URL': 'URL de la portada',
  'Current: {url}': 'Actual: {url}',
  'Danger zone': 'Zona peligrosa',
  Delete: 'Eliminar',
  'Delete this comment for good?': '¿Eliminar este comentario para siempre?',
  'Delete this movie': 'Eliminar esta película',
  'Delete “{title}”? Its video, subtitles, ratings, comments and favourites go too.':
    '¿Eliminar «{title}»? También se eliminan su vídeo, subtítulos, valoraciones, comentarios y favoritos.',
  'Deleting removes the video and everything attached to it.':
    'Al eliminarla se borran el vídeo y todo lo asociado a él.',
  Description: 'Descripción',
  Edit: 'Editar',
  'Edit “{title}”': 'Editar «{title}»',
  'Español, English…': 'Español, English…',
  'For a video that already lives elsewhere (https).': 'Para un vídeo que ya está en otro sitio (https).',
  'Former member': 'Antiguo miembro',
  Hide: 'Ocultar',
  Label: 'Etiqueta',
  'Language code': 'Código de idioma',
  'Leave empty to keep the current cover.': 'Déjalo vacío para conservar la portada actual.',
  'Make visible': 'Hacer visible',
  'Movie added.': 'Película añadida.',
  'Movie deleted.': 'Película eliminada.',
  'Movie unavailable': 'Película no disponible',
  'Movie updated.': 'Película actualizada.',
  'Movie uploaded.': 'Película subida.',
  Movies: 'Películas',
  'Movies in the catalogue': 'Películas del catálogo',
  'No movies yet.': 'Todavía no hay películas.',
  'No subtitles yet.': 'Todavía no hay subtítulos.',
  'Nothing to change.': 'No hay nada que cambiar.',
  'Nothing to review.': 'No hay nada que revisar.',
  'Open “{title}”': 'Abrir «{title}»',
  'PNG, JPEG or WebP: replaces the current cover.': 'PNG, JPEG o WebP: sustituye a la portada actual.',
  'PNG, JPEG or WebP (optional: without one, a frame of the video is the poster)':
    'PNG, JPEG o WebP (opcional: sin ella, un fotograma del vídeo es la portada)',
  'Page {page} of {pages}': 'Página {page} de {pages}',
  'Processing…': 'Procesando…',
  Rating: 'Valoración',
  'Reported and hidden comments.': 'Comentarios denunciados y ocultos.',
  Storage: 'Almacenamiento',
  'Subtitle file': 'Archivo de subtítulos',
  'Subtitles added.': 'Subtítulos añadidos.',
  Title: 'Título',
  Upload: 'Subir',
  'Upload a movie': 'Subir una película',
  'Upload cancelled.': 'Subida cancelada.',
  'Upload progress': 'Progreso de la subida',
  'Uploading…': 'Subiendo…',
  'Video URL': 'URL del vídeo',
  'Video file': 'Archivo de vídeo',
  'View movie': 'Ver la película',
  'WebVTT or SRT. A file in the same language replaces the old one.':
    'WebVTT o SRT. Un archivo en el mismo idioma sustituye al anterior.',
  'Your account cannot manage the catalogue.': 'Tu cuenta no puede gestionar el catálogo.',
  'add subtitles': 'añadir subtítulos',
  '{count} reports': '{count} denuncias',
  '{percent} % of {size}': '{percent} % de {size}',
  '← Administration': '← Administración',
  '← Back to the catalogue': '← Volver al catálogo',
  '(edited)': '(editado)',
  'Back to the catalogue': 'Volver al catálogo',
  Cancel: 'Cancelar',
  'Cannot reach the server to play this video. Check your connection and try again.':
    'No se puede contactar con el servidor para reproducir este vídeo. Comprueba tu conexión y vuelve a intentarlo.',
  'Changing…': 'Cambiando…',
  'Choose a new password for your Streamia account.': 'Elige una nueva contraseña para tu cuenta de Streamia.',
  'Deleting…': 'Eliminando…',
  'Enter a whole number from 13 to 150.': 'Escribe un número entero de 13 a 150.',
  'Enter the email you registered with and we will send you a link to choose a new password. The link works once, for one hour.':
    'Escribe el correo con el que te registraste y te enviaremos un enlace para elegir una nueva contraseña. El enlace sirve una vez, durante una hora.',
  'Enter your current password.': 'Escribe tu contraseña actual.',
  'Enter your password to confirm.': 'Escribe tu contraseña para confirmar.',
  'Forgot password': 'Contraseña olvidada',
  'If an account exists for that email, a reset link has been sent.':
    'Si existe una cuenta con ese correo, se ha enviado un enlace para restablecerla.',
  'It may have been removed from the catalogue.': 'Puede que se haya retirado del catálogo.',
  'Keys: space play/pause · ← → 5 s · f full screen · m mute · c subtitles':
    'Teclas: espacio reproducir/pausa · ← → 5 s · f pantalla completa · m silencio · c subtítulos',
  'Loading ratings…': 'Cargando valoraciones…',
  'Loading your profile…': 'Cargando tu perfil…',
  'Movie not found': 'Película no encontrada',
  'Not found': 'No encontrada',
  Pagination: 'Paginación',
  'Password changed.': 'Contraseña cambiada.',
  'Password requirements': 'Requisitos de la contraseña',
  'Passwords do not match.': 'Las contraseñas no coinciden.',
  'Profile updated.': 'Perfil actualizado.',
  'Rating distribution': 'Distribución de las valoraciones',
  Ratings: 'Valoraciones',
  Register: 'Registro',
  'Request a new link': 'Pide un enlace nuevo',
  'Reset password': 'Restablecer la contraseña',
  Save: 'Guardar',
  'Something went wrong': 'Algo ha ido mal',
  'The video file is damaged or uses a format this browser cannot decode.':
    'El archivo de vídeo está dañado o usa un formato que este navegador no puede descodificar.',
  'The video file is missing: it may have been removed or not processed yet.':
    'Falta el archivo de vídeo: puede que se haya eliminado o que aún no se haya procesado.',
  'The video service is unavailable right now. Please try again in a moment.':
    'El servicio de vídeo no está disponible ahora. Vuelve a intentarlo en un momento.',
  'There is nothing at this address. ': 'No hay nada en esta dirección. ',
  'This movie could not be loaded': 'No se ha podido cargar esta película',
  'This removes your account together with your list, ratings and comments. It cannot be undone.':
    'Esto elimina tu cuenta junto con tu lista, tus valoraciones y tus comentarios. No se puede deshacer.',
  'This video cannot be played right now.': 'Este vídeo no se puede reproducir ahora.',
  'Tick the box to confirm you want to delete your account.':
    'Marca la casilla para confirmar que quieres eliminar tu cuenta.',
  You: 'Tú',
  'You have not rated this movie yet.': 'Todavía no has valorado esta película.',
  'You must be at least 13 (13–150).': 'Debes tener al menos 13 años (13–150).',
  'You rated this {value} out of 5.': 'Le has dado {value} de 5.',
  'Your password has been reset.': 'Tu contraseña se ha restablecido.',
  'Hidden by a moderator': 'Ocultado por un moderador',
  'You have been logged out.': 'Has cerrado la sesión.',
  'Your session has expired. Please log in again.': 'Tu sesión ha caducado. Vuelve a iniciar sesión.',
  'Welcome, {name}!': '¡Hola, {name}!',
  'Welcome!': '¡Hola!',
  'Member since {date}': 'Miembro desde el {date}',
  'Your other sessions were signed out.': 'Tus otras sesiones se han cerrado.',
  '1 movie': '1 película',
  '{count} movies': '{count} películas',
  'Skip to content': 'Saltar al contenido',
  'Streamia home': 'Inicio de Streamia',
  Menu: 'Menú',
  Main: 'Principal',
  Dismiss: 'Cerrar',
  '{value} out of 5 stars': '{value} de 5 estrellas',
  '{hours} h {minutes} min': '{hours} h {minutes} min',
  '{minutes} min {seconds} s': '{minutes} min {seconds} s',
  '{minutes} min': '{minutes} min',
  '{seconds} s': '{seconds} s',
  'At least 8 characters': 'Al menos 8 caracteres',
  'An uppercase letter': 'Una mayúscula',
  'A lowercase letter': 'Una minúscula',
  'A digit': 'Un número',
  'A special character: {specials}': 'Un carácter especial: {specials}',
  '8 characters': '8 caracteres',
  'an uppercase letter': 'una mayúscula',
  'a lowercase letter': 'una minúscula',
  'a digit': 'un número',
  'a special character': 'un carácter especial',
  'Missing: {rules}.': 'Falta: {rules}.',
  '1–50 characters': '1–50 caracteres',
  'Account created. Please log in.': 'Cuenta creada. Inicia sesión.',
  Administrator: 'Administrador',
  'Your account has been deleted. Goodbye!': 'Tu cuenta se ha eliminado. ¡Hasta pronto!',
  'This server': 'Este servidor',
  Cloudinary: 'Cloudinary',
  'Another site': 'Otro sitio',
  Hidden: 'Oculto',
  Visible: 'Visible',
  'MP4, MOV, MKV, WebM or AVI': 'MP4, MOV, MKV, WebM o AVI',
  'https://… (optional)': 'https://… (opcional)',
  'es, en, pt-br…': 'es, en, pt-br…',
  file: 'archivo',
  'The service is temporarily unavailable. Please try again in a moment.':
    'El servicio no está disponible en este momento. Vuelve a intentarlo dentro de un momento.',
  'Log in to continue.': 'Inicia sesión para continuar.',
  'Invalid email or password.': 'Correo o contraseña incorrectos.',
  'An account with this email already exists.': 'Ya existe una cuenta con este correo.',
  'Account not found.': 'No se ha encontrado la cuenta.',
  'This reset link is invalid or has expired.':
    'Este enlace para restablecer la contraseña no es válido o ha caducado.',
  'Only administrators can do this.': 'Solo los administradores pueden hacer esto.',
  'You are not allowed to do this.': 'No tienes permiso para hacer esto.',
  'You can only change what is yours.': 'Solo puedes cambiar lo que es tuyo.',
  'This movie does not exist or has been removed.': 'Esta película no existe o se ha retirado.',
  'The video file was not found.': 'No se ha encontrado el archivo de vídeo.',
  'The file was not found.': 'No se ha encontrado el archivo.',
  'This rating no longer exists.': 'Esta valoración ya no existe.',
  'This comment no longer exists.': 'Este comentario ya no existe.',
  'This movie is not in your list.': 'Esta película no está en tu lista.',
  'This movie is already in your list.': 'Esta película ya está en tu lista.',
  'There is no progress saved for this movie.': 'No hay progreso guardado de esta película.',
  'This movie is not in your history.': 'Esta película no está en tu historial.',
  'It changed at the same time somewhere else. Please try again.':
    'Ha cambiado a la vez en otro sitio. Vuelve a intentarlo.',
  'Too many attempts.': 'Demasiados intentos.',
  'The server is busy. Please try again in a moment.':
    'El servidor está ocupado. Vuelve a intentarlo dentro de un momento.',
  'Some fields are not valid.': 'Algunos campos no son válidos.',
  'The request was not valid.': 'La petición no es válida.',
  'The file is too large.': 'El archivo es demasiado grande.',
  'The upload stopped sending data for too long. Please try again.':
    'La subida dejó de enviar datos durante demasiado tiempo. Vuelve a intentarlo.',
  'This is already being done. Please wait a moment.': 'Ya se está haciendo. Espera un momento.',
  'This kind of file is not supported.': 'Este tipo de archivo no se admite.',
  'The image must be a PNG, JPEG or WebP file.': 'La imagen debe ser un archivo PNG, JPEG o WebP.',
  'The image could not be read: it may be damaged or too large.':
    'No se ha podido leer la imagen: puede que esté dañada o sea demasiado grande.',
  'This video format is not supported.': 'Este formato de vídeo no se admite.',
  'The video could not be read: it may be damaged.': 'No se ha podido leer el vídeo: puede que esté dañado.',
  'The subtitle file could not be read: use WebVTT or SRT.':
    'No se ha podido leer el archivo de subtítulos: usa WebVTT o SRT.',
  'The upload was not valid.': 'La subida no es válida.',
  'Not found.': 'No encontrado.',
  'Something went wrong on our side. Please try again.': 'Algo ha fallado por nuestra parte. Vuelve a intentarlo.',
  'Cannot reach the server. Check your connection and try again.':
    'No se puede contactar con el servidor. Comprueba tu conexión y vuelve a intentarlo.',
  'The password is incorrect.': 'La contraseña no es correcta.',
  'Request failed (HTTP {status}).': 'La petición ha fallado (HTTP {status}).',
  'Something went wrong.': 'Algo ha ido mal.',
  'Try again in {wait}.': 'Vuelve a intentarlo dentro de {wait}.',
  'Check this value.': 'Revisa este valor.',
  'Enter a valid email address.': 'Escribe un correo electrónico válido.',
  'The password does not meet the requirements.': 'La contraseña no cumple los requisitos.',
  '1 second': '1 segundo',
  '{count} seconds': '{count} segundos',
  '{count} minutes': '{count} minutos',
  ' and add movies with “Add to my list”.': ' y añade películas con «Añadir a mi lista».',
  '1 rating': '1 valoración',
  '{count} ratings': '{count} valoraciones',
  '1 star': '1 estrella',
  '{count} stars': '{count} estrellas',
  'Video: {title}': 'Vídeo: {title}',
  'Subtitles {number}': 'Subtítulos {number}',
  'The video is hosted on another site ({host}) that cannot be reached or does not serve a playable video.':
    'El vídeo está en otro sitio ({host}) al que no se puede llegar o que no sirve un vídeo reproducible.',
  'This browser cannot play this video format ({type}).':
    'Este navegador no puede reproducir este formato de vídeo ({type}).',
  '♥ In my list': '♥ En mi lista',
  'My list is unavailable: {reason}': 'Tu lista no está disponible: {reason}',
  '1 star: {count} ({percent}%)': '1 estrella: {count} ({percent} %)',
  '{stars} stars: {count} ({percent}%)': '{stars} estrellas: {count} ({percent} %)',
  ' to rate this movie.': ' para valorar esta película.',
};

function initial() {
  const stored = localStorage.getItem(KEY);
  if (stored === 'es' || stored === 'en') return stored;
  try {
    const user = JSON.parse(localStorage.getItem('streamia.user') || 'null');
    if (user && (user.language === 'es' || user.language === 'en')) return user.language;
  } catch {
    // an unreadable stored user: fall back to the browser
  }
  return (navigator.language || 'en').toLowerCase().startsWith('es') ? 'es' : 'en';
}

let current = initial();
document.documentElement.lang = current;

/** The current language: 'es' or 'en'. */
export function language() {
  return current;
}

/**
 * After a log-in or log-out, or an account's language edited: without a choice made in this
 * browser the page follows the account's language at once, as a reload would. True when the
 * language changed.
 */
export function followAccount() {
  const next = initial();
  if (next === current) return false;
  current = next;
  document.documentElement.lang = current;
  return true;
}

/** Switches the language (remembered in this browser). */
export function setLanguage(value) {
  current = value === 'es' ? 'es' : 'en';
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current;
}

/** Marks an English text as one to translate when shown (`t(value)` later): for tables. */
export function msg(text) {
  return text;
}

/** `text` in the current language, with each `{name}` replaced by `vars[name]`. */
export function t(text, vars) {
  const translated = current === 'es' ? (ES[text] ?? text) : text;
  return vars ? translated.replace(/\{(\w+)\}/g, (whole, name) => String(vars[name] ?? whole)) : translated;
}

/** A number with `digits` decimals, written the current language's way ("4.5" / "4,5"). */
export function formatNumber(value, digits = 0) {
  return Number(value).toLocaleString(current, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
